"""The front door's one config, docker/haproxy.cfg, in each of its environments.

`expand` reads the file as HAProxy does with a given environment (the
`.if defined(...)` blocks and the "${NAME}" expansions), so the Compose
cross-references are checked on what the container would load; `haproxy -c`
then checks it with the Compose environment, the local stack's and the
Kubernetes front door Deployment's.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from harness.deploy_check.compose import Compose, listening_ports

CONFIG = "docker/haproxy.cfg"
MOUNT = "/usr/local/etc/haproxy/haproxy.cfg"
ADMIN_PORT = "8404"  # the proxy's own /health and /stats, published on 127.0.0.1 only
_IF = re.compile(r"^\s*\.if\s+(!?)defined\((\w+)\)\s*$")
_QUOTED_VAR = re.compile(r'"\$\{(\w+)\}"')


def expand(text: str, env: dict[str, str]) -> tuple[str, list[str]]:
    """The config as HAProxy reads it with `env`, and the variables it uses but `env` lacks."""
    lines: list[str] = []
    missing: list[str] = []
    active = [True]  # one entry per open .if
    for line in text.splitlines():
        m = _IF.match(line)
        if m:
            active.append(active[-1] and ((m.group(2) in env) != bool(m.group(1))))
        elif line.strip() == ".else":
            active[-1] = active[-2] and not active[-1]
        elif line.strip() == ".endif":
            active.pop()
        elif active[-1] and not line.lstrip().startswith("#"):
            for name in _QUOTED_VAR.findall(line):
                if name not in env:
                    missing.append(name)
            lines.append(_QUOTED_VAR.sub(lambda v: env.get(v.group(1), ""), line))
    return "\n".join(lines) + "\n", missing


def config_path(root: Path, compose: Compose, service: str) -> Path | None:
    for vol in compose.services[service].get("volumes", []):
        if isinstance(vol, str) and vol.split(":")[1:2] == [MOUNT]:
            return root / vol.split(":")[0]
    return None


def proxy_services(compose: Compose) -> list[str]:
    return [n for n, svc in compose.services.items() if str(svc.get("image", "")).startswith("haproxy:")]


def check_compose_front_door(root: Path, compose: Compose) -> list[str]:
    """Compose's HAProxy: 2.6, the config mounted, its binds published, its servers services on their ports."""
    errors: list[str] = []
    services = compose.services
    for name in proxy_services(compose):
        svc = services[name]
        if not svc["image"].startswith("haproxy:2.6"):
            errors.append(f"compose {name}: the front door is meant to be HAProxy 2.6, got {svc['image']}")
        path = config_path(root, compose, name)
        if path is None or not path.is_file():
            errors.append(f"compose {name}: haproxy.cfg is not mounted at {MOUNT}")
            continue
        cfg, missing = expand(path.read_text(), compose.environment(name))
        for var in dict.fromkeys(missing):
            errors.append(f"compose {name}: haproxy.cfg uses ${{{var}}}, which the service's environment lacks")
        published = [str(p).rsplit(":", 1)[-1] for p in svc.get("ports", [])]
        binds = re.findall(r"^\s*bind\s+\S*:(\d+)", cfg, re.M)
        for port in binds:
            if port not in published and port != ADMIN_PORT:
                errors.append(f"haproxy.cfg: binds :{port}, which compose does not publish")
        if "8080" not in binds:
            errors.append("haproxy.cfg: the front door must listen on 8080")
        servers = re.findall(r"^\s*server(?:-template)?\s+\S+\s+(?:\d+\s+)?([\w.-]+):(\d+)", cfg, re.M)
        if not servers:
            errors.append("haproxy.cfg: no servers")
        for host, port in servers:
            if host not in services:
                errors.append(f"haproxy.cfg: server {host}:{port} is not a compose service")
            elif port not in listening_ports(services[host]):
                errors.append(f"haproxy.cfg: {host} does not expose port {port}")
        if not re.search(r"acl\s+\S+\s+path\s+/user_tags\b", cfg):
            errors.append("haproxy.cfg: no path rule for /user_tags")
    return errors


def haproxy_check(haproxy: str, config: Path, env: dict[str, str]) -> list[str]:
    """`haproxy -c` on the config with exactly `env` (findings: its output when it refuses)."""
    result = subprocess.run([haproxy, "-c", "-f", str(config)], env=env, capture_output=True, text=True)
    if result.returncode == 0:
        return []
    return [f"haproxy -c -f {config} with {' '.join(f'{k}={v}' for k, v in env.items())}:",
            *(result.stdout + result.stderr).splitlines()]


def local_environments(scratch: Path) -> dict[str, dict[str, str]]:
    """The environment the local stack gives HAProxy, single node and CLUSTER_SIZE=3."""
    from harness.local_stack.config import StackSettings
    from harness.local_stack.proxy import HAProxy

    return {
        f"local stack, cluster size {n}": HAProxy(StackSettings(cluster_size=n, run_dir=scratch)).environment()
        for n in (1, 3)
    }


def kubernetes_environments(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """The environment of each rendered Deployment that runs the front door (it sets PROXY_BIND)."""
    envs = {}
    for d in docs:
        if d.get("kind") != "Deployment":
            continue
        for c in d["spec"]["template"]["spec"]["containers"]:
            env = {e["name"]: str(e.get("value", "")) for e in c.get("env", [])}
            if "PROXY_BIND" in env:
                envs[f"k8s Deployment/{d['metadata']['name']}"] = env
    return envs


def check_haproxy(root: Path, compose: Compose, haproxy: str | None = None,
                  k8s_docs: list[dict[str, Any]] | None = None) -> list[str]:
    """`haproxy -c` on docker/haproxy.cfg with Compose's environment, the local stack's and Kubernetes'."""
    haproxy = haproxy or shutil.which("haproxy") or "/usr/sbin/haproxy"
    errors: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:
        envs = local_environments(Path(scratch))
        for name in proxy_services(compose):
            envs[f"compose {name}"] = compose.environment(name)
        envs.update(kubernetes_environments(k8s_docs or []))
        for label, env in envs.items():
            findings = haproxy_check(haproxy, root / CONFIG, env)
            errors += [f"{label}: {findings[0]}", *findings[1:]] if findings else []
    return errors
