"""k8s/ rendered: `kubectl kustomize` (offline), or without kubectl, assembled here."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from harness.deploy_check.base import load_yaml, load_yaml_all

K8S_DIR = "k8s"


def render_python(root: Path) -> list[dict[str, Any]]:
    """The kustomization's resources with its namespace applied (nothing else of kustomize)."""
    kz = load_yaml(root / K8S_DIR / "kustomization.yaml")
    out = []
    for res in kz["resources"]:
        for obj in load_yaml_all(root / K8S_DIR / res):
            if kz.get("namespace"):
                if obj["kind"] == "Namespace":
                    obj["metadata"]["name"] = kz["namespace"]
                else:
                    obj["metadata"]["namespace"] = kz["namespace"]
            out.append(obj)
    return out


def render(root: Path, kubectl: str | None = None) -> tuple[list[dict[str, Any]], str]:
    """The rendered objects and how they were rendered. Raises CalledProcessError when kubectl refuses."""
    kubectl = kubectl if kubectl is not None else shutil.which("kubectl")
    if kubectl is None:
        return render_python(root), "kubectl not found: kustomization assembled in Python"
    result = subprocess.run(
        [kubectl, "kustomize", str(root / K8S_DIR)], capture_output=True, text=True, check=True
    )
    return [d for d in yaml.safe_load_all(result.stdout) if d], "kubectl kustomize"
