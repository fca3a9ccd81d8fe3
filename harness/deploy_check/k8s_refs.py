"""Cross-references between the rendered built-in Kubernetes objects.

Namespaces, the ConfigMap's keys, envFrom and PVC references, pinned images,
resource requests, probes on /health/ready and /health/live, Service, PDB and
HPA targets, the front door's servers. The FlinkDeployment and the operator examples:
flink_deployment.py.
"""

from __future__ import annotations

from typing import Any

from harness.deploy_check.base import image_pinned

Obj = dict[str, Any]
Objects = dict[str, dict[str, Obj]]  # kind -> name -> object

CONFIG_MAP = "allezon-config"
# The variables of docker/haproxy.cfg that name the APIs (host:port).
FRONT_DOOR_SERVERS = ("PROXY_INGEST_SERVER", "PROXY_QUERY_SERVER")
CONSISTENCY = {"ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "SERIAL",
               "LOCAL_SERIAL", "LOCAL_ONE"}
CONFIG_KEYS = {"KAFKA_BOOTSTRAP_SERVERS", "KAFKA_TOPIC", "CASSANDRA_CONTACT_POINTS", "CASSANDRA_PORT",
               "CASSANDRA_KEYSPACE", "CASSANDRA_CONSISTENCY", "CASSANDRA_LOCAL_DC",
               "CASSANDRA_REPLICATION_FACTOR", "LOG_LEVEL"}


def by_kind(docs: list[Obj]) -> Objects:
    objs: Objects = {}
    for o in docs:
        objs.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
    return objs


def config(objs: Objects) -> dict[str, Any]:
    return dict(objs.get("ConfigMap", {}).get(CONFIG_MAP, {}).get("data") or {})


def check_env_refs(objs: Objects, label: str, containers: list[Obj], volumes: list[Obj]) -> list[str]:
    errors = []
    for c in containers:
        for ef in c.get("envFrom", []):
            ref = (ef.get("configMapRef") or {}).get("name")
            if ref and ref not in objs.get("ConfigMap", {}):
                errors.append(f"{label}: envFrom ConfigMap {ref} does not exist")
    for vol in volumes:
        claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
        if claim and claim not in objs.get("PersistentVolumeClaim", {}):
            errors.append(f"{label}: PVC {claim} does not exist")
    return errors


def _container_ports(containers: list[Obj]) -> set[Any]:
    ports = [p for c in containers for p in c.get("ports", [])]
    return {p.get("name") for p in ports} | {p["containerPort"] for p in ports}


def check_config(docs: list[Obj], objs: Objects) -> list[str]:
    errors = []
    namespaces = set(objs.get("Namespace", {}))
    for o in docs:
        ns = o["metadata"].get("namespace")
        if o["kind"] != "Namespace" and ns not in namespaces:
            errors.append(f"{o['kind']}/{o['metadata']['name']}: namespace {ns} is not created by the manifests")
    data = config(objs)
    missing = CONFIG_KEYS - set(data)
    if missing:
        errors.append(f"ConfigMap {CONFIG_MAP}: missing {sorted(missing)}")
    if data.get("CASSANDRA_CONSISTENCY") not in CONSISTENCY:
        errors.append(f"ConfigMap {CONFIG_MAP}: CASSANDRA_CONSISTENCY {data.get('CASSANDRA_CONSISTENCY')} "
                      "is not a level")
    for k, val in data.items():
        if not isinstance(val, str):
            errors.append(f"ConfigMap {CONFIG_MAP}: {k} must be a string")
    return errors


def check_workloads(objs: Objects) -> list[str]:
    """Deployments and Jobs: selectors, config references, images, requests and (Deployments) probes."""
    errors = []
    for kind in ("Deployment", "Job"):
        for name, o in objs.get(kind, {}).items():
            tpl = o["spec"]["template"]
            spec = tpl["spec"]
            label = f"{kind}/{name}"
            if kind == "Deployment":
                sel = o["spec"]["selector"]["matchLabels"]
                if any(tpl["metadata"].get("labels", {}).get(k) != val for k, val in sel.items()):
                    errors.append(f"{label}: selector does not match the pod labels")
            errors += check_env_refs(objs, label, spec["containers"], spec.get("volumes", []))
            for c in spec["containers"]:
                if not image_pinned(c.get("image", "")):
                    errors.append(f"{label}: image {c.get('image', '')} not pinned")
                req = (c.get("resources") or {}).get("requests") or {}
                if not {"cpu", "memory"} <= set(req):
                    errors.append(f"{label}: container {c['name']} lacks cpu/memory requests")
                if kind == "Deployment":
                    errors += _check_probes(label, c)
    return errors


def _check_probes(label: str, c: Obj) -> list[str]:
    errors = []
    ports = _container_ports([c])
    for probe in ("readinessProbe", "livenessProbe"):
        p = c.get(probe)
        if not p:
            errors.append(f"{label}: container {c['name']} has no {probe}")
        elif "httpGet" in p and p["httpGet"]["port"] not in ports:
            errors.append(f"{label}: {probe} port {p['httpGet']['port']} is not a container port")
    if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/health/ready":
        errors.append(f"{label}: readinessProbe should be GET /health/ready")
    if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/health/live":
        errors.append(f"{label}: livenessProbe should be GET /health/live")
    return errors


def check_routing(objs: Objects) -> list[str]:
    """Services, PDBs and HPAs reach a Deployment; the front door's servers are Service ports."""
    errors = []
    pods = {n: (d["spec"]["template"]["metadata"].get("labels") or {}, d["spec"]["template"]["spec"]["containers"])
            for n, d in objs.get("Deployment", {}).items()}

    def matching(selector: dict[str, str]) -> list[str]:
        return [n for n, (labels, _) in pods.items() if all(labels.get(k) == v for k, v in selector.items())]

    for name, svc in objs.get("Service", {}).items():
        targets = matching(svc["spec"].get("selector") or {})
        if not targets:
            errors.append(f"Service/{name}: selector matches no Deployment")
        for port in svc["spec"]["ports"]:
            tp = port.get("targetPort", port["port"])
            for t in targets:
                if tp not in _container_ports(pods[t][1]):
                    errors.append(f"Service/{name}: targetPort {tp} not a port of Deployment/{t}")
    for name, pdb in objs.get("PodDisruptionBudget", {}).items():
        if not matching(pdb["spec"]["selector"].get("matchLabels", {})):
            errors.append(f"PodDisruptionBudget/{name}: selector matches no Deployment")
    for name, hpa in objs.get("HorizontalPodAutoscaler", {}).items():
        ref = hpa["spec"]["scaleTargetRef"]
        if ref["name"] not in objs.get(ref["kind"], {}):
            errors.append(f"HorizontalPodAutoscaler/{name}: target {ref['kind']}/{ref['name']} does not exist")
        elif "replicas" in objs[ref["kind"]][ref["name"]]["spec"]:
            errors.append(f"HorizontalPodAutoscaler/{name}: {ref['name']} also sets spec.replicas "
                          "(apply resets the HPA)")
    front_doors = 0
    for name, (_, containers) in pods.items():
        env = {e["name"]: e.get("value", "") for c in containers for e in c.get("env", [])}
        servers = [env[v] for v in FRONT_DOOR_SERVERS if v in env]
        if not servers:
            continue
        front_doors += 1
        if len(servers) != len(FRONT_DOOR_SERVERS):
            errors.append(f"Deployment/{name}: the front door needs {' and '.join(FRONT_DOOR_SERVERS)}")
        for server in servers:
            host, _, port = server.rpartition(":")
            backend = objs.get("Service", {}).get(host)
            if backend is None:
                errors.append(f"Deployment/{name}: front door server {server}: no Service {host}")
            elif not any(str(sp["port"]) == port for sp in backend["spec"]["ports"]):
                errors.append(f"Deployment/{name}: front door server {server}: Service {host} has no port {port}")
    if not front_doors:
        errors.append("no front door: no Deployment sets " + " and ".join(FRONT_DOOR_SERVERS))
    return errors


def check_builtin(docs: list[Obj]) -> list[str]:
    objs = by_kind(docs)
    return check_config(docs, objs) + check_workloads(objs) + check_routing(objs)
