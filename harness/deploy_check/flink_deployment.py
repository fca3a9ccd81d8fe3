"""The FlinkDeployment (for the Flink Kubernetes Operator), its volume, and the operator examples.

The FlinkDeployment's fields against the operator CRD's field names, its
versions against the Flink image; the entry point is flink_jobs/launch.py's
(PythonDriver, -pym ENTRY_MODULE, one interpreter for driver and workers);
the job's parallelism is set in job.parallelism only; the autoscaler's
options and bounds; the Prometheus reporter and its port; where state comes
from (upgrade mode, HA, checkpoint and savepoint directories on the mounted
ReadWriteMany PVC) and that START_WITHOUT_STATE is never part of the
manifests; the service account bound. The examples in k8s/operators/ (not in
the kustomization) must agree with the ConfigMap and the job's parallelism.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from harness.deploy_check.base import image_pinned, load_yaml_all, module_file
from harness.deploy_check.dockerfiles import Versions
from harness.deploy_check.k8s_refs import Obj, Objects, by_kind, check_env_refs, config

FD_SPEC = {"flinkConfiguration", "flinkVersion", "image", "imagePullPolicy", "ingress", "job",
           "jobManager", "logConfiguration", "mode", "podTemplate", "restartNonce", "serviceAccount",
           "taskManager"}
FD_JOB = {"allowNonRestoredState", "args", "autoscalerResetNonce", "checkpointTriggerNonce", "entryClass",
          "initialSavepointPath", "jarURI", "parallelism", "savepointRedeployNonce",
          "savepointTriggerNonce", "state", "upgradeMode"}
FD_COMPONENT = {"podTemplate", "replicas", "resource"}
FD_RESOURCE = {"cpu", "ephemeralStorage", "memory"}

LAUNCH = "flink_jobs/launch.py"
PYTHON_DRIVER = "org.apache.flink.client.python.PythonDriver"
PROMETHEUS_FACTORY = "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"
# Flink 1.20's keys first, then their deprecated names.
CHECKPOINT_DIR_KEYS = ("execution.checkpointing.dir", "state.checkpoints.dir")
SAVEPOINT_DIR_KEYS = ("execution.checkpointing.savepoint-dir", "state.savepoints.dir")
HA_DIR_KEY = "high-availability.storageDir"
# Where else a parallelism could be given: job.parallelism is the one place.
OTHER_PARALLELISM_KEYS = ("parallelism.default", "pipeline.jobvertex-parallelism-overrides")
# The job refuses to start without state unless this is "true": never in the manifests.
START_EMPTY = "START_WITHOUT_STATE"
# The autoscaler's options (AutoScalerOptions of the operator 1.13 to 1.15), after "job.autoscaler.".
AUTOSCALER_OPTIONS = {
    "backlog-processing.lag-threshold", "catch-up.duration", "enabled", "excluded.periods",
    "flink.rest-client.timeout", "history.max.age", "history.max.count", "memory.gc-pressure.threshold",
    "memory.heap-usage.threshold", "memory.tuning.enabled", "memory.tuning.maximize-managed-memory",
    "memory.tuning.overhead", "memory.tuning.scale-down-compensation.enabled", "metrics.busy-time.aggregator",
    "metrics.window", "observed-scalability.coefficient-min", "observed-scalability.enabled",
    "observed-scalability.min-observations", "observed-true-processing-rate.lag-threshold",
    "observed-true-processing-rate.min-observations", "observed-true-processing-rate.switch-threshold",
    "quota.cpu", "quota.memory", "restart.time", "restart.time-tracking.enabled", "restart.time-tracking.limit",
    "scale-down.interval", "scale-down.max-factor", "scale-up.grace-period", "scale-up.max-factor",
    "scaling.effectiveness.detection.enabled", "scaling.effectiveness.threshold", "scaling.enabled",
    "scaling.event.interval", "scaling.key-group.partitions.adjust.mode", "stabilization.interval",
    "target.utilization", "target.utilization.boundary", "utilization.max", "utilization.min",
    "utilization.target", "vertex.exclude.ids", "vertex.max-parallelism", "vertex.min-parallelism",
}
AUTOSCALER = "job.autoscaler."


def entry_module(root: Path) -> str | None:
    """ENTRY_MODULE of flink_jobs/launch.py, the one definition of the job's submission."""
    path = root / LAUNCH
    if not path.is_file():
        return None
    for node in ast.parse(path.read_text()).body:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "ENTRY_MODULE"
                                                 for t in node.targets)
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            return node.value.value
    return None


def _arg(args: list[Any], flag: str) -> str | None:
    """The value after `flag` in job.args (None when absent)."""
    return str(args[args.index(flag) + 1]) if flag in args[:-1] else None


def _first(conf: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    return next((str(conf[k]) for k in keys if conf.get(k)), None)


def _main_container(spec: Obj) -> Obj:
    containers = (spec.get("podTemplate") or {}).get("spec", {}).get("containers", [])
    return next((c for c in containers if c.get("name") == "flink-main-container"), {})


def _environment(objs: Objects, spec: Obj) -> dict[str, Any]:
    """What the JobManager's environment gets from the manifests: the main container's env,
    the ConfigMaps it takes whole, and containerized.*.env.* options."""
    main = _main_container(spec)
    env: dict[str, Any] = {}
    for ef in main.get("envFrom", []):
        ref = str((ef.get("configMapRef") or {}).get("name"))
        env.update(objs.get("ConfigMap", {}).get(ref, {}).get("data") or {})
    env.update({e["name"]: e.get("value") for e in main.get("env", [])})
    for key, value in (spec.get("flinkConfiguration") or {}).items():
        for prefix in ("containerized.master.env.", "containerized.taskmanager.env."):
            if key.startswith(prefix):
                env[key[len(prefix):]] = value
    return env


def _check_fields(label: str, spec: Obj) -> list[str]:
    errors = []
    jm, tm = spec.get("jobManager", {}), spec.get("taskManager", {})
    for keys, allowed, where in ((spec, FD_SPEC, "spec"), (spec.get("job", {}), FD_JOB, "spec.job"),
                                 (jm, FD_COMPONENT, "spec.jobManager"), (tm, FD_COMPONENT, "spec.taskManager"),
                                 (jm.get("resource", {}), FD_RESOURCE, "spec.jobManager.resource"),
                                 (tm.get("resource", {}), FD_RESOURCE, "spec.taskManager.resource")):
        unknown = set(keys) - allowed
        if unknown:
            errors.append(f"{label}: unknown fields in {where}: {sorted(unknown)}")
    for comp in ("jobManager", "taskManager"):
        res = spec.get(comp, {}).get("resource", {})
        if not isinstance(res.get("cpu"), (int, float)) or not isinstance(res.get("memory"), str):
            errors.append(f"{label}: {comp}.resource needs numeric cpu and string memory")
    return errors


def _check_entry_point(root: Path, label: str, spec: Obj, v: Versions | None) -> list[str]:
    """The submission of flink_jobs/launch.py, in the operator's fields."""
    errors = []
    job = spec.get("job") or {}
    if v and job.get("jarURI") != f"local:///opt/flink/opt/flink-python-{v.flink}.jar":
        errors.append(f"{label}: jarURI {job.get('jarURI')} is not the image's flink-python-{v.flink}.jar")
    if job.get("entryClass") != PYTHON_DRIVER:
        errors.append(f"{label}: entryClass must be PythonDriver for a PyFlink job")
    args = job.get("args") or []
    module = _arg(args, "-pym")
    if module is None:
        errors.append(f"{label}: job.args lack -pym <module>")
    elif not module_file(root, module).is_file():
        errors.append(f"{label}: -pym {module}: no such module in the repository")
    elif module != (want := entry_module(root)):
        errors.append(f"{label}: -pym {module} is not {LAUNCH}'s ENTRY_MODULE ({want})")
    if "-py" in args:
        errors.append(f"{label}: job.args run a script (-py); the entry point is a module (-pym)")
    client, workers = _arg(args, "-pyclientexec"), _arg(args, "-pyexec")
    if not client or not workers or not client.startswith("/") or client != workers:
        errors.append(f"{label}: job.args need -pyclientexec and -pyexec, the same absolute path (the image's "
                      f"python), as {LAUNCH} passes one interpreter for both; got {client} and {workers}")
    conf = spec.get("flinkConfiguration") or {}
    for key in ("python.client.executable", "python.executable"):
        if key in conf:
            errors.append(f"{label}: flinkConfiguration {key}: the interpreter is given in job.args only")
    return errors


def _check_state(objs: Objects, label: str, spec: Obj) -> list[str]:
    """Where the job's state comes from: never an empty start by accident."""
    errors = []
    conf = spec.get("flinkConfiguration") or {}
    job = spec.get("job") or {}
    mode = job.get("upgradeMode")
    if mode not in ("stateless", "savepoint", "last-state"):
        errors.append(f"{label}: upgradeMode {mode}")
    if mode == "stateless":
        errors.append(f"{label}: upgradeMode stateless would start the job empty on every upgrade")
    if mode == "last-state" and (conf.get("high-availability.type") != "kubernetes" or not conf.get(HA_DIR_KEY)):
        errors.append(f"{label}: last-state upgrades need high-availability.type: kubernetes and {HA_DIR_KEY}")
    if mode != "stateless" and not _first(conf, CHECKPOINT_DIR_KEYS):
        errors.append(f"{label}: {mode} upgrades need a checkpoint directory ({CHECKPOINT_DIR_KEYS[0]})")
    wants_savepoints = mode == "savepoint" or any(
        conf.get(k) not in (None, "", "false") for k in ("kubernetes.operator.periodic.savepoint.interval",
                                                         "kubernetes.operator.job.savepoint-on-deletion"))
    if wants_savepoints and not _first(conf, SAVEPOINT_DIR_KEYS):
        errors.append(f"{label}: savepoints need a savepoint directory ({SAVEPOINT_DIR_KEYS[0]})")
    if job.get("allowNonRestoredState") is True:
        errors.append(f"{label}: allowNonRestoredState drops the state of operators it cannot map (the Kafka "
                      "source's offsets among them): set it for one deliberate restore only")
    if START_EMPTY in _environment(objs, spec):
        errors.append(f"{label}: {START_EMPTY} is set in the manifests: the job would start empty whenever it "
                      "finds no state (set it by hand for the first deployment only, docs/DEPLOYMENT.md)")
    if job.get("state", "running") not in ("running", "suspended"):
        errors.append(f"{label}: job.state {job.get('state')}")
    return errors


def _int(conf: dict[str, Any], key: str) -> int | None:
    try:
        return int(str(conf[key])) if key in conf else None
    except ValueError:
        return None


def _check_parallelism(objs: Objects, label: str, spec: Obj) -> tuple[list[str], int | None]:
    """job.parallelism and nothing else; its bounds. Returns the findings and
    the highest parallelism a vertex may reach (the autoscaler's maximum)."""
    errors = []
    conf = spec.get("flinkConfiguration") or {}
    parallelism = (spec.get("job") or {}).get("parallelism")
    if not isinstance(parallelism, int) or parallelism < 1:
        errors.append(f"{label}: job.parallelism must be set (a positive integer): it is the job's parallelism")
        parallelism = None
    if (spec.get("taskManager") or {}).get("replicas") is not None:
        errors.append(f"{label}: taskManager.replicas overrides job.parallelism (replicas x slots): leave it out, "
                      "the TaskManagers follow from job.parallelism")
    for key in OTHER_PARALLELISM_KEYS:
        if key in conf:
            errors.append(f"{label}: flinkConfiguration {key}: the parallelism is set in job.parallelism only")
    if "FLINK_PARALLELISM" in _environment(objs, spec):
        errors.append(f"{label}: FLINK_PARALLELISM is set: the parallelism is set in job.parallelism only")
    if {"-p", "--parallelism"} & set((spec.get("job") or {}).get("args") or []):
        errors.append(f"{label}: job.args set a parallelism: the parallelism is set in job.parallelism only")
    max_parallelism = _int(conf, "pipeline.max-parallelism")
    if max_parallelism is None:
        errors.append(f"{label}: pipeline.max-parallelism must be fixed (the state's key groups)")
    elif parallelism and parallelism > max_parallelism:
        errors.append(f"{label}: job.parallelism {parallelism} above pipeline.max-parallelism {max_parallelism}")
    if str(conf.get(AUTOSCALER + "enabled", "false")).lower() != "true":
        return errors, parallelism
    found, highest = _check_autoscaler(label, conf, parallelism, max_parallelism)
    return errors + found, highest


def _check_autoscaler(label: str, conf: dict[str, Any], parallelism: int | None,
                      max_parallelism: int | None) -> tuple[list[str], int | None]:
    errors = []
    for key in conf:
        if key.startswith(AUTOSCALER) and key[len(AUTOSCALER):] not in AUTOSCALER_OPTIONS:
            errors.append(f"{label}: {key} is not an option of the autoscaler")
    if conf.get("jobmanager.scheduler") != "adaptive":
        errors.append(f"{label}: the autoscaler rescales in place only with jobmanager.scheduler: adaptive")
    if AUTOSCALER + "target.utilization" in conf:  # the deprecated name
        conf = {**conf, AUTOSCALER + "utilization.target": conf[AUTOSCALER + "target.utilization"]}
    for key in ("utilization.target", "metrics.window", "stabilization.interval", "vertex.max-parallelism"):
        if AUTOSCALER + key not in conf:
            errors.append(f"{label}: {AUTOSCALER}{key} is not set (its default is not this job's)")
    try:
        util = [float(conf[AUTOSCALER + k]) for k in ("utilization.min", "utilization.target", "utilization.max")
                if AUTOSCALER + k in conf]
    except ValueError:
        util = [-1.0]
    if not all(0 < u <= 1 for u in util) or util != sorted(set(util)):
        errors.append(f"{label}: autoscaler utilization must be 0 < min < target < max <= 1, got {util}")
    for key, low, high in (("scale-down.max-factor", 0.0, 1.0), ("scale-up.max-factor", 0.0, float("inf"))):
        if AUTOSCALER + key in conf:
            try:
                ok = low < float(conf[AUTOSCALER + key]) <= high
            except ValueError:
                ok = False
            if not ok:
                errors.append(f"{label}: {AUTOSCALER}{key} {conf[AUTOSCALER + key]} outside ({low}, {high}]")
    lowest = _int(conf, AUTOSCALER + "vertex.min-parallelism") or 1
    highest = _int(conf, AUTOSCALER + "vertex.max-parallelism")
    if highest is None:
        return errors, parallelism
    if parallelism is not None and not lowest <= parallelism <= highest:
        errors.append(f"{label}: job.parallelism {parallelism} outside the autoscaler's "
                      f"[{lowest}, {highest}] (vertex.min-parallelism, vertex.max-parallelism)")
    if max_parallelism is not None and (highest > max_parallelism or max_parallelism % highest):
        errors.append(f"{label}: {AUTOSCALER}vertex.max-parallelism {highest} must divide pipeline.max-parallelism "
                      f"{max_parallelism} (keyed vertices get a divisor of the key groups)")
    return errors, highest


def _check_metrics(label: str, spec: Obj) -> list[str]:
    """The Prometheus reporter, on a port the pods expose."""
    conf = spec.get("flinkConfiguration") or {}
    if conf.get("metrics.reporter.prom.factory.class") != PROMETHEUS_FACTORY:
        return [f"{label}: metrics.reporter.prom.factory.class must be {PROMETHEUS_FACTORY}"]
    port = _int(conf, "metrics.reporter.prom.port")
    if port is None:
        return [f"{label}: metrics.reporter.prom.port must be one port (each pod has its own)"]
    if port not in {p.get("containerPort") for p in _main_container(spec).get("ports", [])}:
        return [f"{label}: the Prometheus port {port} is not a containerPort of flink-main-container"]
    return []


def _check_pods(objs: Objects, label: str, spec: Obj) -> list[str]:
    """The pod template's env and volumes, the service account, the image, heartbeats."""
    errors = []
    conf = spec.get("flinkConfiguration") or {}
    tpl = spec.get("podTemplate") or {}
    containers = tpl.get("spec", {}).get("containers", [])
    if [c.get("name") for c in containers] != ["flink-main-container"]:
        errors.append(f"{label}: podTemplate must hold exactly the flink-main-container")
    errors += check_env_refs(objs, label, containers, tpl.get("spec", {}).get("volumes", []))
    mounts = [m["mountPath"] for c in containers for m in c.get("volumeMounts", [])]
    for key in (*CHECKPOINT_DIR_KEYS, *SAVEPOINT_DIR_KEYS, HA_DIR_KEY):
        path = str(conf.get(key, ""))
        if path.startswith("file://") and not any(path[len("file://"):].startswith(m) for m in mounts):
            errors.append(f"{label}: {key} {path} is not on a mounted volume")
    if "FLINK_CHECKPOINT_DIR" in _environment(objs, spec):
        errors.append(f"{label}: FLINK_CHECKPOINT_DIR is set: the job would override the cluster's "
                      f"{CHECKPOINT_DIR_KEYS[0]}")
    interval, timeout = _int(conf, "heartbeat.interval"), _int(conf, "heartbeat.timeout")
    if interval is not None and timeout is not None and interval >= timeout:
        errors.append(f"{label}: heartbeat.interval {interval} must be below heartbeat.timeout {timeout}")
    sa = spec.get("serviceAccount")
    if sa not in objs.get("ServiceAccount", {}):
        errors.append(f"{label}: serviceAccount {sa} does not exist")
    elif not any(s.get("name") == sa for rb in objs.get("RoleBinding", {}).values() for s in rb.get("subjects", [])):
        errors.append(f"{label}: serviceAccount {sa} is bound to no Role")
    image = str(spec.get("image", ""))
    if not image.split("/")[-1].startswith("flink:") and not image_pinned(image):
        errors.append(f"{label}: image {spec.get('image')} not pinned")
    return errors


def _check_versions(label: str, spec: Obj, v: Versions | None) -> list[str]:
    errors = []
    if v and spec.get("flinkVersion") != "v" + v.flink_minor.replace(".", "_"):
        errors.append(f"{label}: flinkVersion {spec.get('flinkVersion')} but the image is Flink {v.flink_minor}")
    if spec.get("mode", "native") not in ("native", "standalone"):
        errors.append(f"{label}: mode {spec.get('mode')}")
    for k, val in (spec.get("flinkConfiguration") or {}).items():
        if not isinstance(val, str):
            errors.append(f"{label}: flinkConfiguration {k} must be a string (quote it)")
    return errors


def check_flink_deployment(root: Path, docs: list[Obj], v: Versions | None) -> tuple[list[str], int | None]:
    """Findings, and the highest parallelism the job may reach (None without a FlinkDeployment)."""
    objs = by_kind(docs)
    fds = objs.get("FlinkDeployment", {})
    errors = [] if len(fds) == 1 else [f"expected one FlinkDeployment, found {len(fds)}"]
    highest = None
    for name, fd in fds.items():
        label = f"FlinkDeployment/{name}"
        if fd["apiVersion"] != "flink.apache.org/v1beta1":
            errors.append(f"{label}: apiVersion {fd['apiVersion']}")
        spec = fd["spec"]
        found, highest = _check_parallelism(objs, label, spec)
        errors += (_check_fields(label, spec) + _check_versions(label, spec, v)
                   + _check_entry_point(root, label, spec, v) + found + _check_state(objs, label, spec)
                   + _check_metrics(label, spec) + _check_pods(objs, label, spec))
    for name, pvc in objs.get("PersistentVolumeClaim", {}).items():
        if "ReadWriteMany" not in pvc["spec"].get("accessModes", []):
            errors.append(f"PersistentVolumeClaim/{name}: JobManager and TaskManagers share it: needs ReadWriteMany")
    return errors, highest


def check_operator_examples(files: list[Path], docs: list[Obj], parallelism: int | None) -> list[str]:
    """The Strimzi KafkaTopic and the K8ssandraCluster agree with the ConfigMap and the job
    (`parallelism`: the highest the job may reach)."""
    errors = []
    cfg: dict[str, Any] = config(by_kind(docs))
    for path in files:
        for o in load_yaml_all(path):
            label = f"{path.name} {o.get('kind')}/{o.get('metadata', {}).get('name')}"
            ns = o["metadata"].get("namespace")
            if o["kind"] == "KafkaTopic":
                cluster = o["metadata"].get("labels", {}).get("strimzi.io/cluster")
                if o["spec"].get("topicName") != cfg.get("KAFKA_TOPIC"):
                    errors.append(f"{label}: topicName differs from KAFKA_TOPIC {cfg.get('KAFKA_TOPIC')}")
                if parallelism and o["spec"].get("partitions", 0) < parallelism:
                    errors.append(f"{label}: fewer partitions than the job's highest parallelism {parallelism}")
                min_isr = int(str(o["spec"].get("config", {}).get("min.insync.replicas", 1)))
                if min_isr >= o["spec"].get("replicas", 1) > 1:
                    errors.append(f"{label}: min.insync.replicas must be below replicas to survive a broker loss")
                if not cfg.get("KAFKA_BOOTSTRAP_SERVERS", "").startswith(f"{cluster}-kafka-bootstrap.{ns}."):
                    errors.append(f"{label}: KAFKA_BOOTSTRAP_SERVERS does not name {cluster}-kafka-bootstrap.{ns}")
            elif o["kind"] == "K8ssandraCluster":
                dcs = [dc["metadata"]["name"] for dc in o["spec"]["cassandra"]["datacenters"]]
                want = [f"{o['metadata']['name']}-{dc}-service.{ns}." for dc in dcs]
                if not any(cfg.get("CASSANDRA_CONTACT_POINTS", "").startswith(w) for w in want):
                    errors.append(f"{label}: CASSANDRA_CONTACT_POINTS does not name {want}")
                if cfg.get("CASSANDRA_LOCAL_DC") not in dcs:
                    errors.append(f"{label}: CASSANDRA_LOCAL_DC {cfg.get('CASSANDRA_LOCAL_DC')} not in {dcs}")
                size = min(dc.get("size", 1) for dc in o["spec"]["cassandra"]["datacenters"])
                if int(cfg.get("CASSANDRA_REPLICATION_FACTOR", "1")) > size:
                    errors.append(f"{label}: replication factor above the datacenter size {size}")
            else:
                errors.append(f"{label}: unexpected kind")
    return errors
