"""The FlinkDeployment (for the Flink Kubernetes Operator), its volume, and the operator examples.

The FlinkDeployment's fields against the operator CRD's field names, its
versions against the Flink image, parallelism = TaskManager replicas x slots =
FLINK_PARALLELISM, checkpoints on the mounted ReadWriteMany PVC, the service
account bound. The examples in k8s/operators/ (not in the kustomization)
must agree with the ConfigMap.
"""

from __future__ import annotations

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


def _check_job(root: Path, label: str, spec: Obj, v: Versions | None) -> list[str]:
    errors = []
    conf = spec.get("flinkConfiguration") or {}
    job = spec.get("job") or {}
    if v and spec.get("flinkVersion") != "v" + v.flink_minor.replace(".", "_"):
        errors.append(f"{label}: flinkVersion {spec.get('flinkVersion')} but the image is Flink {v.flink_minor}")
    if spec.get("mode", "native") not in ("native", "standalone"):
        errors.append(f"{label}: mode {spec.get('mode')}")
    for k, val in conf.items():
        if not isinstance(val, str):
            errors.append(f"{label}: flinkConfiguration {k} must be a string (quote it)")
    if job.get("upgradeMode") not in ("stateless", "savepoint", "last-state"):
        errors.append(f"{label}: upgradeMode {job.get('upgradeMode')}")
    if job.get("upgradeMode") == "last-state" and conf.get("high-availability.type") != "kubernetes":
        errors.append(f"{label}: last-state upgrades need high-availability.type: kubernetes")
    if job.get("state", "running") not in ("running", "suspended"):
        errors.append(f"{label}: job.state {job.get('state')}")
    if v and job.get("jarURI") != f"local:///opt/flink/opt/flink-python-{v.flink}.jar":
        errors.append(f"{label}: jarURI {job.get('jarURI')} is not the image's flink-python-{v.flink}.jar")
    if job.get("entryClass") != "org.apache.flink.client.python.PythonDriver":
        errors.append(f"{label}: entryClass must be PythonDriver for a PyFlink job")
    args = job.get("args") or []
    if "-pym" in args:
        module = args[args.index("-pym") + 1]
        if not module_file(root, module).is_file():
            errors.append(f"{label}: -pym {module}: no such module in the repository")
    else:
        errors.append(f"{label}: job.args lack -pym <module>")
    return errors


def _check_pods(objs: Objects, label: str, spec: Obj) -> list[str]:
    """Parallelism, the pod template's env and volumes, the service account, the image."""
    errors = []
    conf = spec.get("flinkConfiguration") or {}
    job = spec.get("job") or {}
    slots = int(conf.get("taskmanager.numberOfTaskSlots", "1"))
    replicas = spec.get("taskManager", {}).get("replicas")
    parallelism = job.get("parallelism")
    if replicas is not None and parallelism != replicas * slots:
        errors.append(f"{label}: job.parallelism {parallelism} != taskManager.replicas {replicas} x slots {slots}")
    tpl = spec.get("podTemplate") or {}
    containers = tpl.get("spec", {}).get("containers", [])
    if [c.get("name") for c in containers] != ["flink-main-container"]:
        errors.append(f"{label}: podTemplate must hold exactly the flink-main-container")
    errors += check_env_refs(objs, label, containers, tpl.get("spec", {}).get("volumes", []))
    env = {e["name"]: e.get("value") for c in containers for e in c.get("env", [])}
    if env.get("FLINK_PARALLELISM") != str(parallelism):
        errors.append(f"{label}: FLINK_PARALLELISM {env.get('FLINK_PARALLELISM')} != job.parallelism {parallelism}")
    mounts = [m["mountPath"] for c in containers for m in c.get("volumeMounts", [])]
    for key in ("state.checkpoints.dir", "state.savepoints.dir", "high-availability.storageDir"):
        path = conf.get(key, "")
        if path.startswith("file://") and not any(path[len("file://"):].startswith(m) for m in mounts):
            errors.append(f"{label}: {key} {path} is not on a mounted volume")
    if env.get("FLINK_CHECKPOINT_DIR") and "file://" + env["FLINK_CHECKPOINT_DIR"] != conf.get("state.checkpoints.dir"):
        errors.append(f"{label}: FLINK_CHECKPOINT_DIR and state.checkpoints.dir differ")
    sa = spec.get("serviceAccount")
    if sa not in objs.get("ServiceAccount", {}):
        errors.append(f"{label}: serviceAccount {sa} does not exist")
    elif not any(s.get("name") == sa for rb in objs.get("RoleBinding", {}).values() for s in rb.get("subjects", [])):
        errors.append(f"{label}: serviceAccount {sa} is bound to no Role")
    image = str(spec.get("image", ""))
    if not image.split("/")[-1].startswith("flink:") and not image_pinned(image):
        errors.append(f"{label}: image {spec.get('image')} not pinned")
    return errors


def check_flink_deployment(root: Path, docs: list[Obj], v: Versions | None) -> tuple[list[str], int | None]:
    """Findings, and the job's parallelism (None without a FlinkDeployment)."""
    objs = by_kind(docs)
    fds = objs.get("FlinkDeployment", {})
    errors = [] if len(fds) == 1 else [f"expected one FlinkDeployment, found {len(fds)}"]
    parallelism = None
    for name, fd in fds.items():
        label = f"FlinkDeployment/{name}"
        if fd["apiVersion"] != "flink.apache.org/v1beta1":
            errors.append(f"{label}: apiVersion {fd['apiVersion']}")
        spec = fd["spec"]
        errors += _check_fields(label, spec) + _check_job(root, label, spec, v) + _check_pods(objs, label, spec)
        parallelism = (spec.get("job") or {}).get("parallelism")
    for name, pvc in objs.get("PersistentVolumeClaim", {}).items():
        if "ReadWriteMany" not in pvc["spec"].get("accessModes", []):
            errors.append(f"PersistentVolumeClaim/{name}: JobManager and TaskManagers share it: needs ReadWriteMany")
    return errors, parallelism


def check_operator_examples(files: list[Path], docs: list[Obj], parallelism: int | None) -> list[str]:
    """The Strimzi KafkaTopic and the K8ssandraCluster agree with the ConfigMap and the job."""
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
                    errors.append(f"{label}: fewer partitions than the job's parallelism {parallelism}")
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
