"""docker-compose.yml, docker/ and k8s/ cannot run here (no Docker engine, no
cluster); scripts/validate_deploy.sh checks them statically instead."""

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_deployment_descriptions_validate():
    result = subprocess.run(
        ["bash", "scripts/validate_deploy.sh"], cwd=REPO, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
