"""docker-compose.yml, docker/ and k8s/ cannot run here (no Docker engine, no
cluster); harness.deploy_check checks them statically instead."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_deployment_descriptions_validate():
    result = subprocess.run(
        [sys.executable, "-m", "harness.deploy_check"], cwd=REPO, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
