"""Each rendered object against the Kubernetes OpenAPI schemas (kubernetes-validate, strict).

The FlinkDeployment has no built-in schema; its pod template is an ordinary
Pod spec and is validated as one. This module runs in the tools' virtualenv
(`python -m harness.deploy_check.k8s_schema <rendered.yaml> <versions>`), so
it imports nothing but PyYAML and kubernetes-validate.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

K8S_VERSIONS = ("1.29.0", "1.33.0", "1.37.0")


def check_schemas(docs: list[dict[str, Any]], versions: list[str]) -> list[str]:
    kv = importlib.import_module("kubernetes_validate")
    utils = importlib.import_module("kubernetes_validate.utils")
    errors: list[str] = []

    def validate(obj: dict[str, Any], label: str) -> bool:
        """False when no version has a schema for the object's kind."""
        for version in versions:
            try:
                kv.validate(obj, version, strict=True)
            except utils.ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                errors.append(f"{label}: Kubernetes {version}: {path}: {e.message}")
                return True
            except utils.SchemaNotFoundError:
                return False
        return True

    for obj in docs:
        label = f"{obj['kind']}/{obj['metadata']['name']}"
        if not validate(obj, label) and obj["kind"] != "FlinkDeployment":
            errors.append(f"{label}: no schema in Kubernetes {versions[0]} (unexpected kind)")
        if obj["kind"] == "FlinkDeployment":
            tpl = obj["spec"].get("podTemplate") or {}
            metadata = {"name": "podtemplate", **tpl.get("metadata", {})}
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": tpl.get("spec", {})}
            validate(pod, f"{label} spec.podTemplate")
    return errors


def main(argv: list[str]) -> int:
    docs = [d for d in yaml.safe_load_all(Path(argv[0]).read_text()) if d]
    errors = list(dict.fromkeys(check_schemas(docs, argv[1].split(","))))
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
