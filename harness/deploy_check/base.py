"""Helpers shared by the checks. Every check returns its findings as strings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]


def image_pinned(image: str) -> bool:
    """True for name:tag with a tag that names a version (has a digit, not `latest`)."""
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest") and re.search(r"\d", tag) is not None


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_yaml_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def module_file(root: Path, module: str) -> Path:
    """Where a dotted Python module lives in the repository."""
    return root / (module.replace(".", "/") + ".py")


def unique(findings: list[str]) -> list[str]:
    return list(dict.fromkeys(findings))
