"""harness.deploy_check's external tools (pinned, in .cache/validate-deploy/) each
catch a broken file; and the runner reports a missing tool as skipped."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from harness.deploy_check import cli, tools

CACHE = cli.REPO_ROOT / tools.CACHE_DIR


@pytest.fixture(scope="module")
def installed() -> Iterator[tools.Tools]:
    """The tools' virtualenv (installed on first use, as `python -m harness.deploy_check` does)."""
    with tools.locked(CACHE):
        try:
            venv = tools.ensure_venv(CACHE)
        except subprocess.CalledProcessError as e:
            pytest.skip(f"the pinned tools cannot be installed here: {e}")
        binary = CACHE / "bin" / f"compose-go-{tools.COMPOSE_GO_VERSION}"
        yield tools.Tools(venv=venv, compose_go=binary if os.access(binary, os.X_OK) else None)


def context(root: Path, found: tools.Tools) -> cli.Context:
    (root / "cache").mkdir(exist_ok=True)
    return cli.Context(root, found, root / "cache")


def write(root: Path, name: str, text: str) -> None:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)


def test_hadolint_catches(tmp_path: Path, installed: tools.Tools) -> None:
    write(tmp_path, "docker/good.Dockerfile", "FROM debian:12.8-slim\nUSER 65534\nCMD [\"true\"]\n")
    assert cli.hadolint(context(tmp_path, installed)) == []
    write(tmp_path, "docker/bad.Dockerfile", "FROM debian\nRUN cd /tmp && apt-get install curl\n")
    findings = "\n".join(cli.hadolint(context(tmp_path, installed)))
    assert "DL3006" in findings  # untagged base image
    assert "DL3003" in findings  # cd instead of WORKDIR


def test_shellcheck_catches(tmp_path: Path, installed: tools.Tools) -> None:
    write(tmp_path, "docker/good.sh", '#!/bin/sh\nexec "$@"\n')
    assert cli.shellcheck(context(tmp_path, installed)) == []
    write(tmp_path, "docker/bad.sh", "#!/bin/sh\nexec $@\n")
    assert "SC2068" in "\n".join(cli.shellcheck(context(tmp_path, installed)))


def test_compose_schema_catches(tmp_path: Path, installed: tools.Tools) -> None:
    write(tmp_path, "docker-compose.yml", yaml.safe_dump({"services": {"a": {"image": "busybox:1.37"}}}))
    assert cli.compose_schema(context(tmp_path, installed)) == []
    write(tmp_path, "docker-compose.yml", yaml.safe_dump({"services": {"a": {"image": "busybox:1.37", "portz": []}}}))
    assert "portz" in "\n".join(cli.compose_schema(context(tmp_path, installed)))


def test_compose_go_catches(tmp_path: Path, installed: tools.Tools) -> None:
    if installed.compose_go is None:
        pytest.skip("compose-go not built yet (python -m harness.deploy_check builds it)")
    write(tmp_path, "docker-compose.yml", yaml.safe_dump({"services": {"a": {"image": "busybox:1.37"}}}))
    assert cli.compose_go(context(tmp_path, installed)) == []
    write(tmp_path, "docker-compose.yml", "services:\n  a:\n    image: busybox:${TAG:?TAG must be set}\n")
    assert "TAG must be set" in "\n".join(cli.compose_go(context(tmp_path, installed)))


def test_k8s_schema_catches(tmp_path: Path, installed: tools.Tools) -> None:
    container = {"name": "api", "image": "allezon/api:0.1.0"}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api"},
                  "spec": {"selector": {"matchLabels": {"app": "api"}},
                           "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [container]}}}}
    ctx = context(tmp_path, installed)
    ctx.k8s_docs = [deployment]
    assert cli.k8s_schema_check(ctx) == []
    container["imagePullPolicy"] = "Sometimes"
    container["port"] = 8081  # strict: unknown fields fail
    findings = "\n".join(cli.k8s_schema_check(ctx))
    assert "Deployment/api: Kubernetes 1.29.0" in findings and "port" in findings


def test_a_missing_tool_is_skipped_and_a_crash_fails(tmp_path: Path) -> None:
    ctx = context(tmp_path, tools.Tools(missing={"haproxy": "haproxy not installed"}))

    def crash(_: cli.Context) -> list[str]:
        raise KeyError("spec")

    outcome = cli.run_checks(ctx, [("haproxy", cli.haproxy_c), ("crash", crash), ("fine", lambda _: [])])
    assert outcome == {"haproxy": "skipped", "crash": "failed", "fine": "ok"}
