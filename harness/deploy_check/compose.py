"""docker-compose.yml's cross-references, read with the defaults of its variables.

depends_on targets and conditions, no cycles, pinned third-party images,
builds (dockerfiles.check_build), volumes and bind mounts, the Kafka and
Cassandra addresses the apps use, and the stream job's module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.deploy_check.base import image_pinned, load_yaml, module_file
from harness.deploy_check.dockerfiles import FLINK_DOCKERFILE, check_build

COMPOSE_FILE = "docker-compose.yml"
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")

Service = dict[str, Any]


@dataclass
class Compose:
    services: dict[str, Service]
    volumes: dict[str, Any]
    # Variables without a default: the file must work with an empty environment.
    errors: list[str] = field(default_factory=list)

    def environment(self, service: str) -> dict[str, str]:
        env = self.services.get(service, {}).get("environment") or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
        return {str(k): str(v) for k, v in env.items()}


def interpolate(value: Any, errors: list[str]) -> Any:
    """Compose interpolation with the defaults only (deterministic)."""
    if isinstance(value, dict):
        return {k: interpolate(v, errors) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, errors) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        if m.group(2) in (":-", "-"):
            return m.group(3)
        errors.append(f"{COMPOSE_FILE}: ${{{m.group(1) or m.group(4)}}} has no default; "
                      "the file must work with an empty environment")
        return ""

    return _VAR.sub(sub, value)


def load(root: Path) -> Compose:
    raw = load_yaml(root / COMPOSE_FILE) or {}
    errors: list[str] = []
    doc = {k: v for k, v in raw.items() if not str(k).startswith("x-")}
    services = interpolate(doc.get("services") or {}, errors)
    return Compose(services, doc.get("volumes") or {}, errors)


def listening_ports(svc: Service) -> list[str]:
    ports = [str(p) for p in svc.get("expose", [])]
    for p in svc.get("ports", []):
        ports.append(str(p).rsplit(":", 1)[-1].split("/")[0])
    return ports


def _depends_on(svc: Service) -> dict[str, Any]:
    deps = svc.get("depends_on") or {}
    if isinstance(deps, list):
        return {d: {"condition": "service_started"} for d in deps}
    return dict(deps)


def check_services(root: Path, compose: Compose) -> list[str]:
    errors: list[str] = []
    services, volumes = compose.services, compose.volumes
    for name, svc in services.items():
        image = svc.get("image")
        if not image:
            errors.append(f"compose {name}: no image name")
        elif "build" not in svc and not image_pinned(image):
            errors.append(f"compose {name}: image {image} is not pinned to a version tag")
        if "build" in svc:
            build = svc["build"] if isinstance(svc["build"], dict) else {"context": svc["build"]}
            errors += check_build(root, name, build)
        for dep, spec in _depends_on(svc).items():
            cond = (spec or {}).get("condition", "service_started")
            if dep not in services:
                errors.append(f"compose {name}: depends_on unknown service {dep}")
                continue
            target = services[dep]
            if cond == "service_healthy":
                hc = target.get("healthcheck") or {}
                if not hc.get("test") or hc.get("disable"):
                    errors.append(f"compose {name}: waits for {dep} to be healthy, but {dep} has no healthcheck")
            elif cond == "service_completed_successfully":
                if str(target.get("restart", "no")) != "no":
                    errors.append(
                        f"compose {name}: waits for {dep} to complete, but {dep} restarts ({target.get('restart')})"
                    )
            elif cond != "service_started":
                errors.append(f"compose {name}: unknown depends_on condition {cond}")
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
            if src.startswith((".", "/")):
                if not (root / src).exists():
                    errors.append(f"compose {name}: bind-mount source {src} does not exist")
            elif src and src not in volumes:
                errors.append(f"compose {name}: volume {src} is not declared under volumes:")
    return errors + check_cycles(services)


def check_cycles(services: dict[str, Service]) -> list[str]:
    graph = {name: list(_depends_on(svc)) for name, svc in services.items()}
    errors: list[str] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(n: str, path: list[str]) -> None:
        if state.get(n) == 1:
            errors.append("compose: depends_on cycle " + " -> ".join([*path, n]))
            return
        if state.get(n) == 2:
            return
        state[n] = 1
        for d in graph.get(n, []):
            if d in graph:
                visit(d, [*path, n])
        state[n] = 2

    for n in graph:
        visit(n, [])
    return errors


def check_addresses(compose: Compose) -> list[str]:
    """Apps bootstrap from an advertised Kafka listener; Cassandra contact points are services."""
    errors: list[str] = []
    advertised: dict[str, str] = {}
    for name in compose.services:
        env = compose.environment(name)
        for listener in env.get("KAFKA_ADVERTISED_LISTENERS", "").split(","):
            if listener:
                advertised[listener.split("://", 1)[-1]] = name
    apps = 0
    for name in compose.services:
        env = compose.environment(name)
        if "KAFKA_BOOTSTRAP_SERVERS" in env:
            apps += 1
            for hp in env["KAFKA_BOOTSTRAP_SERVERS"].split(","):
                if hp not in advertised:
                    errors.append(
                        f"compose {name}: KAFKA_BOOTSTRAP_SERVERS {hp} is not an advertised listener "
                        f"({', '.join(sorted(advertised)) or 'none'})"
                    )
        for host in env.get("CASSANDRA_CONTACT_POINTS", "").split(","):
            if host and host.strip() not in compose.services:
                errors.append(f"compose {name}: CASSANDRA_CONTACT_POINTS host {host} is not a service")
    if apps < 3:
        errors.append("compose: expected ingest-api, query-api and the Flink job to get KAFKA_BOOTSTRAP_SERVERS")
    return errors


def check_job(root: Path, compose: Compose) -> list[str]:
    """The stream job's -pym module exists, and -pyfs is where the Flink image puts it."""
    errors: list[str] = []
    for name, svc in compose.services.items():
        cmd = svc.get("command") or []
        if not (isinstance(cmd, list) and "-pym" in cmd):
            continue
        module = cmd[cmd.index("-pym") + 1]
        if not module_file(root, module).is_file():
            errors.append(f"compose {name}: -pym {module}: no such module in the repository")
        if "-pyfs" in cmd:
            pyfs = cmd[cmd.index("-pyfs") + 1]
            if f" {pyfs}/{module.split('.')[0]}/" not in (root / FLINK_DOCKERFILE).read_text():
                errors.append(f"compose {name}: -pyfs {pyfs} is not where {FLINK_DOCKERFILE} puts {module}")
    return errors


def check_compose(root: Path) -> list[str]:
    compose = load(root)
    if not compose.services:
        return [*compose.errors, "compose: no services"]
    return compose.errors + check_services(root, compose) + check_addresses(compose) + check_job(root, compose)
