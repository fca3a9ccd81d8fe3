"""The Dockerfiles: what COPY reads from the build context, the version pins, and what the Flink image holds.

The pins that must agree: the Flink image = PyFlink in requirements/flink.lock =
the Flink line of the connector jars = the Prometheus reporter's version; both
images on Python 3.11, as pyproject.toml requires. The Flink image must put
what the job's entry point needs where its environment says it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FLINK_DOCKERFILE = "docker/flink.Dockerfile"
API_DOCKERFILE = "docker/api.Dockerfile"
CONNECTORS = "docker/flink-connectors.txt"
FLINK_LOCK = "requirements/flink.lock"
PROMETHEUS_ARTIFACT = "org.apache.flink:flink-metrics-prometheus:${FLINK_VERSION}"
PROMETHEUS_PLUGIN_DIR = "/opt/flink/plugins/metrics-prometheus/"
# The Python packages the job imports (from PYTHONPATH in the image).
JOB_PACKAGES = ("flink_jobs", "common")


@dataclass(frozen=True)
class Versions:
    flink: str  # 1.20.5

    @property
    def flink_minor(self) -> str:  # 1.20
        return ".".join(self.flink.split(".")[:2])


def flink_version(root: Path) -> Versions | None:
    """The Flink version of the Flink image (None when its ARG is not found)."""
    m = re.search(
        r"^ARG FLINK_IMAGE=flink:(\d+\.\d+\.\d+)-scala_2\.12-java17$", (root / FLINK_DOCKERFILE).read_text(), re.M
    )
    return Versions(m.group(1)) if m else None


def check_versions(root: Path) -> list[str]:
    errors: list[str] = []
    flink_df = (root / FLINK_DOCKERFILE).read_text()
    v = flink_version(root)
    if v is None:
        return [f"{FLINK_DOCKERFILE}: ARG FLINK_IMAGE=flink:X.Y.Z-scala_2.12-java17 not found"]
    m = re.search(r"^apache-flink==(\S+)", (root / FLINK_LOCK).read_text(), re.M)
    if not m or m.group(1) != v.flink:
        errors.append(f"{FLINK_LOCK} pins apache-flink=={m and m.group(1)}, the image is Flink {v.flink}")
    if not re.search(r"^ARG PYTHON_VERSION=(3\.11\.\d+)$", flink_df, re.M):
        errors.append(f"{FLINK_DOCKERFILE}: ARG PYTHON_VERSION=3.11.x not found")
    if not re.search(r"^ARG PYTHON_SHA256=[0-9a-f]{64}$", flink_df, re.M):
        errors.append(f"{FLINK_DOCKERFILE}: ARG PYTHON_SHA256 is not a SHA-256")
    if not re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-\w+$", (root / API_DOCKERFILE).read_text(), re.M):
        errors.append(f"{API_DOCKERFILE}: ARG PYTHON_IMAGE=python:3.11.x-slim-<debian> not found")
    if 'requires-python = ">=3.11,<3.12"' not in (root / "pyproject.toml").read_text():
        errors.append("pyproject.toml no longer requires Python 3.11: update both Dockerfiles")
    for line in (root / CONNECTORS).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if (
            len(parts) != 2
            or not re.fullmatch(r"[\w.-]+:[\w.-]+:[\w.-]+(:[\w.-]+)?", parts[0])
            or not re.fullmatch(r"[0-9a-f]{40}", parts[1])
        ):
            errors.append(f"{CONNECTORS}: bad line {line!r} (want group:artifact:version[:classifier] sha1)")
        elif parts[0].startswith("org.apache.flink:") and not parts[0].endswith("-" + v.flink_minor):
            errors.append(f"{CONNECTORS}: {parts[0]} is not built for Flink {v.flink_minor}")
    return errors


def copy_sources(dockerfile: Path) -> list[str]:
    """Build-context paths that COPY/ADD instructions (without --from) read."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    out: list[str] = []
    for line in text.splitlines():
        m = re.match(r"\s*(COPY|ADD)\s+(.*)", line, re.I)
        if not m:
            continue
        args = m.group(2).split()
        if any(a.startswith("--from") for a in args):
            continue
        out.extend([a for a in args if not a.startswith("--")][:-1])
    return out


def check_build(root: Path, service: str, build: dict[str, str]) -> list[str]:
    """A Compose build: the Dockerfile exists, and every COPY source exists and passes its .dockerignore."""
    ctx = root / build.get("context", ".")
    dockerfile = ctx / build.get("dockerfile", "Dockerfile")
    if not dockerfile.is_file():
        return [f"compose {service}: dockerfile {dockerfile} missing"]
    errors: list[str] = []
    ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
    allowed: list[str] | None = None
    if ignore.is_file():
        pats = [p.strip() for p in ignore.read_text().splitlines() if p.strip() and not p.startswith("#")]
        # Only the "exclude everything, admit a list" form is understood.
        if pats and pats[0] == "*":
            allowed = [p[1:].rstrip("/") for p in pats if p.startswith("!")]
    for src in copy_sources(dockerfile):
        # A wildcard source must match something, as `docker build` requires.
        exists = any(ctx.glob(src)) if any(c in src for c in "*?[") else (ctx / src).exists()
        if not exists:
            errors.append(f"{dockerfile.relative_to(root)}: COPY source {src} does not exist")
        if allowed is not None and not any(src.rstrip("/") == a or src.startswith(a + "/") for a in allowed):
            errors.append(f"{ignore.relative_to(root)}: COPY source {src} is excluded from the build context")
    return errors


def _instructions(dockerfile: str) -> list[tuple[str, list[str]]]:
    """(instruction, arguments) of each line, continuation lines joined."""
    text = re.sub(r"\\\n", " ", dockerfile)
    out = []
    for line in text.splitlines():
        m = re.match(r"\s*([A-Za-z]+)\s+(.*)", line)
        if m and not line.lstrip().startswith("#"):
            out.append((m.group(1).upper(), m.group(2).split()))
    return out


def final_stage(dockerfile: str) -> list[tuple[str, list[str]]]:
    """The instructions of the last stage (the image that runs)."""
    steps = _instructions(dockerfile)
    starts = [i for i, (op, _) in enumerate(steps) if op == "FROM"]
    return steps[starts[-1]:] if starts else steps


def image_env(steps: list[tuple[str, list[str]]]) -> dict[str, str]:
    """ENV KEY=VALUE pairs (the KEY=VALUE form only)."""
    env = {}
    for op, args in steps:
        if op == "ENV":
            env.update(dict(a.split("=", 1) for a in args if "=" in a))
    return env


def check_flink_image(root: Path, packages: tuple[str, ...] = JOB_PACKAGES) -> list[str]:
    """The image holds what the entry point needs where its ENV says, and the Prometheus reporter."""
    text = (root / FLINK_DOCKERFILE).read_text()
    steps = final_stage(text)
    env = image_env(steps)
    targets = {args[-1].rstrip("/") for op, args in steps if op in ("COPY", "ADD") and len(args) > 1}
    errors = []
    for key in ("FLINK_SINKS_JAR", "FLINK_CONNECTOR_DIR"):
        if env.get(key, "").rstrip("/") not in targets:
            errors.append(f"{FLINK_DOCKERFILE}: ENV {key}={env.get(key)} is not where the image copies it")
    path = env.get("PYTHONPATH", "").rstrip("/")
    for pkg in packages:
        if f"{path}/{pkg}" not in targets:
            errors.append(f"{FLINK_DOCKERFILE}: {pkg}/ is not copied into PYTHONPATH={path or None}")
    if "FLINK_CHECKPOINT_DIR" in env:
        errors.append(f"{FLINK_DOCKERFILE}: ENV FLINK_CHECKPOINT_DIR overrides the cluster's checkpoint directory")
    v = flink_version(root)
    m = re.search(r"^ARG FLINK_VERSION=(\S+)$", text, re.M)
    if v is None or not m or m.group(1) != v.flink:
        errors.append(f"{FLINK_DOCKERFILE}: ARG FLINK_VERSION={m and m.group(1)} is not the image's Flink "
                      f"{v and v.flink}")
    if PROMETHEUS_ARTIFACT not in text:
        errors.append(f"{FLINK_DOCKERFILE}: the Prometheus reporter {PROMETHEUS_ARTIFACT} is not fetched")
    if PROMETHEUS_PLUGIN_DIR.rstrip("/") not in targets:
        errors.append(f"{FLINK_DOCKERFILE}: nothing is copied into {PROMETHEUS_PLUGIN_DIR}")
    return errors
