"""harness.deploy_check on the Kubernetes side: the checks pass a small valid
set of objects and name what one broken field breaks."""

from __future__ import annotations

import copy
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.deploy_check import flink_deployment, k8s_refs, k8s_render
from harness.deploy_check.dockerfiles import Versions

NS = "shop"
CONFIG = {
    "KAFKA_BOOTSTRAP_SERVERS": f"events-kafka-bootstrap.{NS}.svc:9092",
    "KAFKA_TOPIC": "user_tags",
    "CASSANDRA_CONTACT_POINTS": f"store-dc1-service.{NS}.svc",
    "CASSANDRA_PORT": "9042",
    "CASSANDRA_KEYSPACE": "allezon",
    "CASSANDRA_CONSISTENCY": "LOCAL_QUORUM",
    "CASSANDRA_LOCAL_DC": "dc1",
    "CASSANDRA_REPLICATION_FACTOR": "3",
    "LOG_LEVEL": "INFO",
}


def meta(name: str, **labels: str) -> dict[str, Any]:
    return {"name": name, "namespace": NS, **({"labels": labels} if labels else {})}


def api_deployment() -> dict[str, Any]:
    probe = {"httpGet": {"path": "/health/ready", "port": "http"}}
    container = {
        "name": "api", "image": "allezon/api:0.1.0", "envFrom": [{"configMapRef": {"name": "allezon-config"}}],
        "ports": [{"name": "http", "containerPort": 8081}],
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}},
        "readinessProbe": probe, "livenessProbe": {"httpGet": {"path": "/health/live", "port": 8081}},
    }
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("ingest-api"),
            "spec": {"selector": {"matchLabels": {"app": "ingest"}},
                     "template": {"metadata": {"labels": {"app": "ingest"}}, "spec": {"containers": [container]}}}}


AUTOSCALER = {
    "job.autoscaler.enabled": "true",
    "job.autoscaler.utilization.target": "0.6",
    "job.autoscaler.utilization.min": "0.4",
    "job.autoscaler.utilization.max": "0.8",
    "job.autoscaler.metrics.window": "10m",
    "job.autoscaler.stabilization.interval": "2m",
    "job.autoscaler.scale-down.max-factor": "0.5",
    "job.autoscaler.vertex.min-parallelism": "2",
    "job.autoscaler.vertex.max-parallelism": "12",
}


def flink() -> dict[str, Any]:
    container = {"name": "flink-main-container", "envFrom": [{"configMapRef": {"name": "allezon-config"}}],
                 "ports": [{"name": "metrics", "containerPort": 9249}],
                 "volumeMounts": [{"name": "data", "mountPath": "/flink-data"}]}
    return {
        "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment", "metadata": meta("job"),
        "spec": {
            "image": "allezon/flink:0.1.0", "flinkVersion": "v1_20", "serviceAccount": "flink", "mode": "native",
            "flinkConfiguration": {"taskmanager.numberOfTaskSlots": "2", "pipeline.max-parallelism": "120",
                                   "jobmanager.scheduler": "adaptive",
                                   "heartbeat.interval": "2000", "heartbeat.timeout": "20000",
                                   "execution.checkpointing.dir": "file:///flink-data/checkpoints",
                                   "execution.checkpointing.savepoint-dir": "file:///flink-data/savepoints",
                                   "high-availability.type": "kubernetes",
                                   "high-availability.storageDir": "file:///flink-data/ha",
                                   "kubernetes.operator.job.savepoint-on-deletion": "true",
                                   "metrics.reporter.prom.factory.class": flink_deployment.PROMETHEUS_FACTORY,
                                   "metrics.reporter.prom.port": "9249", **AUTOSCALER},
            "podTemplate": {"spec": {"containers": [container],
                                     "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}},
            "jobManager": {"resource": {"cpu": 1, "memory": "1200m"}},
            "taskManager": {"resource": {"cpu": 2, "memory": "2g"}},
            "job": {"jarURI": "local:///opt/flink/opt/flink-python-1.20.5.jar",
                    "entryClass": "org.apache.flink.client.python.PythonDriver",
                    "args": ["-pym", "jobs.main", "-pyclientexec", "/usr/bin/python3", "-pyexec", "/usr/bin/python3"],
                    "parallelism": 4, "upgradeMode": "last-state"},
        },
    }


def objects() -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("allezon-config"), "data": dict(CONFIG)},
        api_deployment(),
        {"apiVersion": "v1", "kind": "Service", "metadata": meta("ingest-api"),
         "spec": {"selector": {"app": "ingest"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}},
        front_door(),
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": meta("ingest-api"),
         "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "ingest-api"}}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("flink")},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta("flink"),
         "subjects": [{"kind": "ServiceAccount", "name": "flink"}]},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta("data"),
         "spec": {"accessModes": ["ReadWriteMany"]}},
        flink(),
    ]


def front_door() -> dict[str, Any]:
    """A front door Deployment: HAProxy whose servers are the fixture's Service."""
    deployment = api_deployment()
    deployment["metadata"] = meta("front-door")
    deployment["spec"]["selector"]["matchLabels"] = {"app": "front"}
    deployment["spec"]["template"]["metadata"]["labels"] = {"app": "front"}
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "PROXY_INGEST_SERVER", "value": "ingest-api:80"},
                        {"name": "PROXY_QUERY_SERVER", "value": "ingest-api:80"}]
    return deployment


def front_door_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "front-door")


def set_front_door_env(docs: list[dict[str, Any]], name: str, value: str) -> None:
    for e in front_door_of(docs)["spec"]["template"]["spec"]["containers"][0]["env"]:
        if e["name"] == name:
            e["value"] = value


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind)


def pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = by_kind(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return result


def fd(docs: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = by_kind(docs, "FlinkDeployment")["spec"]
    return result


def conf(docs: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = fd(docs)["flinkConfiguration"]
    return result


def main_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = fd(docs)["podTemplate"]["spec"]["containers"][0]
    return result


def job_repo(root: Path) -> Path:
    """The job's module and the launch definition that names it."""
    (root / "jobs").mkdir()
    (root / "jobs" / "main.py").write_text("")
    (root / "jobs" / "other.py").write_text("")
    (root / "flink_jobs").mkdir()
    (root / "flink_jobs" / "launch.py").write_text('JOB_NAME = "job"\nENTRY_MODULE = "jobs.main"\n')
    return root


def test_the_fixture_passes(tmp_path: Path) -> None:
    assert k8s_refs.check_builtin(objects()) == []
    # The highest parallelism is the autoscaler's maximum.
    assert flink_deployment.check_flink_deployment(job_repo(tmp_path), objects(), Versions("1.20.5")) == ([], 12)


def test_without_the_autoscaler_the_highest_parallelism_is_the_jobs(tmp_path: Path) -> None:
    docs = objects()
    conf(docs)["job.autoscaler.enabled"] = "false"
    assert flink_deployment.check_flink_deployment(job_repo(tmp_path), docs, Versions("1.20.5")) == ([], 4)


def test_the_repositorys_entry_module_is_launchs() -> None:
    from flink_jobs import launch

    assert flink_deployment.entry_module(Path(__file__).resolve().parents[2]) == launch.ENTRY_MODULE


Break = Callable[[list[dict[str, Any]]], None]

BUILTIN_BREAKS: list[tuple[str, Break, str]] = [
    ("readiness path", lambda d: pod(d)["readinessProbe"]["httpGet"].update(path="/"),
     "readinessProbe should be GET /health/ready"),
    ("probe port", lambda d: pod(d)["livenessProbe"]["httpGet"].update(port=9999),
     "livenessProbe port 9999 is not a container port"),
    ("no requests", lambda d: pod(d).pop("resources"), "lacks cpu/memory requests"),
    ("unpinned image", lambda d: pod(d).update(image="allezon/api"), "image allezon/api not pinned"),
    ("unknown ConfigMap", lambda d: pod(d)["envFrom"][0]["configMapRef"].update(name="cfg"),
     "envFrom ConfigMap cfg does not exist"),
    ("missing key", lambda d: by_kind(d, "ConfigMap")["data"].pop("KAFKA_TOPIC"), "missing ['KAFKA_TOPIC']"),
    ("bad consistency", lambda d: by_kind(d, "ConfigMap")["data"].update(CASSANDRA_CONSISTENCY="MOST"),
     "CASSANDRA_CONSISTENCY MOST is not a level"),
    ("foreign namespace", lambda d: by_kind(d, "Service")["metadata"].update(namespace="other"),
     "namespace other is not created"),
    ("selector", lambda d: by_kind(d, "Deployment")["spec"]["selector"]["matchLabels"].update(app="x"),
     "selector does not match the pod labels"),
    ("service selector", lambda d: by_kind(d, "Service")["spec"].update(selector={"app": "query"}),
     "Service/ingest-api: selector matches no Deployment"),
    ("target port", lambda d: by_kind(d, "Service")["spec"]["ports"][0].update(targetPort=8082),
     "targetPort 8082 not a port of Deployment/ingest-api"),
    ("front door server", lambda d: set_front_door_env(d, "PROXY_QUERY_SERVER", "query-api:8082"),
     "front door server query-api:8082: no Service query-api"),
    ("front door port", lambda d: set_front_door_env(d, "PROXY_INGEST_SERVER", "ingest-api:8080"),
     "Service ingest-api has no port 8080"),
    ("no front door", lambda d: d.remove(front_door_of(d)), "no front door"),
    ("HPA fights replicas", lambda d: by_kind(d, "Deployment")["spec"].update(replicas=2),
     "also sets spec.replicas"),
]


@pytest.mark.parametrize(("what", "mutate", "finding"), BUILTIN_BREAKS, ids=[b[0] for b in BUILTIN_BREAKS])
def test_builtin_refs_catch(what: str, mutate: Break, finding: str) -> None:
    docs = objects()
    mutate(docs)
    errors = k8s_refs.check_builtin(docs)
    assert any(finding in e for e in errors), errors


def env(docs: list[dict[str, Any]], name: str, value: str) -> None:
    main_container(docs).setdefault("env", []).append({"name": name, "value": value})


FLINK_BREAKS: list[tuple[str, Break, str]] = [
    # parallelism: job.parallelism, once
    ("replicas", lambda d: fd(d)["taskManager"].update(replicas=2), "taskManager.replicas overrides job.parallelism"),
    ("no parallelism", lambda d: fd(d)["job"].pop("parallelism"), "job.parallelism must be set"),
    ("env parallelism", lambda d: env(d, "FLINK_PARALLELISM", "4"), "FLINK_PARALLELISM is set"),
    ("ConfigMap parallelism", lambda d: by_kind(d, "ConfigMap")["data"].update(FLINK_PARALLELISM="4"),
     "FLINK_PARALLELISM is set"),
    ("default parallelism", lambda d: conf(d).update({"parallelism.default": "4"}),
     "flinkConfiguration parallelism.default: the parallelism is set in job.parallelism only"),
    ("parallelism argument", lambda d: fd(d)["job"]["args"].extend(["-p", "4"]), "job.args set a parallelism"),
    ("no max parallelism", lambda d: conf(d).pop("pipeline.max-parallelism"), "pipeline.max-parallelism must be"),
    # the autoscaler
    ("autoscaler without adaptive scheduler", lambda d: conf(d).pop("jobmanager.scheduler"),
     "rescales in place only with jobmanager.scheduler: adaptive"),
    ("autoscaler typo", lambda d: conf(d).update({"job.autoscaler.utilisation.target": "0.6"}),
     "job.autoscaler.utilisation.target is not an option"),
    ("autoscaler default window", lambda d: conf(d).pop("job.autoscaler.metrics.window"),
     "job.autoscaler.metrics.window is not set"),
    ("utilization order", lambda d: conf(d).update({"job.autoscaler.utilization.min": "0.7"}),
     "utilization must be 0 < min < target < max <= 1"),
    ("scale-down factor", lambda d: conf(d).update({"job.autoscaler.scale-down.max-factor": "1.5"}),
     "job.autoscaler.scale-down.max-factor 1.5 outside"),
    ("parallelism above the autoscaler's", lambda d: fd(d)["job"].update(parallelism=16),
     "job.parallelism 16 outside the autoscaler's [2, 12]"),
    ("max not a divisor", lambda d: conf(d).update({"job.autoscaler.vertex.max-parallelism": "7"}),
     "vertex.max-parallelism 7 must divide pipeline.max-parallelism 120"),
    # the Prometheus reporter
    ("no reporter", lambda d: conf(d).pop("metrics.reporter.prom.factory.class"),
     "metrics.reporter.prom.factory.class must be"),
    ("port range", lambda d: conf(d).update({"metrics.reporter.prom.port": "9249-9250"}),
     "metrics.reporter.prom.port must be one port"),
    ("port not exposed", lambda d: main_container(d).pop("ports"), "the Prometheus port 9249 is not a containerPort"),
    # the entry point
    ("not the launch module", lambda d: fd(d)["job"]["args"].__setitem__(1, "jobs.other"),
     "-pym jobs.other is not flink_jobs/launch.py's ENTRY_MODULE (jobs.main)"),
    ("script", lambda d: fd(d)["job"]["args"].extend(["-py", "jobs/main.py"]), "job.args run a script (-py)"),
    ("two interpreters", lambda d: fd(d)["job"]["args"].__setitem__(5, "/usr/bin/python3.11"),
     "need -pyclientexec and -pyexec, the same absolute path"),
    ("interpreter twice", lambda d: conf(d).update({"python.executable": "/usr/bin/python3"}),
     "flinkConfiguration python.executable: the interpreter is given in job.args only"),
    # state
    ("start empty in env", lambda d: env(d, "START_WITHOUT_STATE", "true"), "START_WITHOUT_STATE is set"),
    ("start empty in ConfigMap", lambda d: by_kind(d, "ConfigMap")["data"].update(START_WITHOUT_STATE="true"),
     "START_WITHOUT_STATE is set"),
    ("start empty by option", lambda d: conf(d).update({"containerized.master.env.START_WITHOUT_STATE": "true"}),
     "START_WITHOUT_STATE is set"),
    ("stateless", lambda d: fd(d)["job"].update(upgradeMode="stateless"), "would start the job empty"),
    ("non-restored state", lambda d: fd(d)["job"].update(allowNonRestoredState=True), "allowNonRestoredState"),
    ("no checkpoint dir", lambda d: conf(d).pop("execution.checkpointing.dir"),
     "last-state upgrades need a checkpoint directory"),
    ("no savepoint dir", lambda d: conf(d).pop("execution.checkpointing.savepoint-dir"),
     "savepoints need a savepoint directory"),
    ("no HA dir", lambda d: conf(d).pop("high-availability.storageDir"),
     "last-state upgrades need high-availability.type: kubernetes and high-availability.storageDir"),
    ("job's checkpoint dir", lambda d: env(d, "FLINK_CHECKPOINT_DIR", "/flink-data/checkpoints"),
     "FLINK_CHECKPOINT_DIR is set"),
    ("heartbeats", lambda d: conf(d).update({"heartbeat.interval": "30000"}),
     "heartbeat.interval 30000 must be below heartbeat.timeout 20000"),
    ("unknown field", lambda d: fd(d)["job"].update(parallelizm=4), "unknown fields in spec.job: ['parallelizm']"),
    ("flink version", lambda d: fd(d).update(flinkVersion="v1_19"), "flinkVersion v1_19 but the image is Flink 1.20"),
    ("jar", lambda d: fd(d)["job"].update(jarURI="local:///opt/flink/opt/flink-python-1.19.1.jar"),
     "is not the image's flink-python-1.20.5.jar"),
    ("module", lambda d: fd(d)["job"].update(args=["-pym", "jobs.gone"]), "-pym jobs.gone: no such module"),
    ("checkpoints off the volume", lambda d: conf(d).update(
        {"execution.checkpointing.dir": "file:///tmp/checkpoints"}),
     "execution.checkpointing.dir file:///tmp/checkpoints is not"),
    ("HA data off the volume", lambda d: conf(d).update({"high-availability.storageDir": "file:///ha"}),
     "high-availability.storageDir file:///ha is not"),
    ("HA for last-state", lambda d: fd(d)["flinkConfiguration"].pop("high-availability.type"),
     "last-state upgrades need high-availability.type"),
    ("unquoted option", lambda d: fd(d)["flinkConfiguration"].update({"taskmanager.numberOfTaskSlots": 2}),
     "flinkConfiguration taskmanager.numberOfTaskSlots must be a string"),
    ("service account", lambda d: fd(d).update(serviceAccount="nobody"), "serviceAccount nobody does not exist"),
    ("unbound account", lambda d: by_kind(d, "RoleBinding").update(subjects=[]), "is bound to no Role"),
    ("volume mode", lambda d: by_kind(d, "PersistentVolumeClaim")["spec"].update(accessModes=["ReadWriteOnce"]),
     "needs ReadWriteMany"),
    ("missing PVC", lambda d: by_kind(d, "PersistentVolumeClaim")["metadata"].update(name="other"),
     "PVC data does not exist"),
]


@pytest.mark.parametrize(("what", "mutate", "finding"), FLINK_BREAKS, ids=[b[0] for b in FLINK_BREAKS])
def test_flink_deployment_checks_catch(tmp_path: Path, what: str, mutate: Break, finding: str) -> None:
    docs = objects()
    mutate(docs)
    errors, _ = flink_deployment.check_flink_deployment(job_repo(tmp_path), docs, Versions("1.20.5"))
    assert any(finding in e for e in errors), errors


TOPIC = {"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "KafkaTopic",
         "metadata": {"name": "user-tags", "namespace": NS, "labels": {"strimzi.io/cluster": "events"}},
         "spec": {"topicName": "user_tags", "partitions": 12, "replicas": 3, "config": {"min.insync.replicas": 2}}}
CASSANDRA = {"apiVersion": "k8ssandra.io/v1alpha1", "kind": "K8ssandraCluster",
             "metadata": {"name": "store", "namespace": NS},
             "spec": {"cassandra": {"datacenters": [{"metadata": {"name": "dc1"}, "size": 3}]}}}


@pytest.mark.parametrize(
    ("doc", "change", "finding"),
    [
        (None, None, None),
        (TOPIC, {"topicName": "tags"}, "topicName differs from KAFKA_TOPIC user_tags"),
        (TOPIC, {"partitions": 2}, "fewer partitions than the job's highest parallelism 4"),
        (TOPIC, {"config": {"min.insync.replicas": 3}}, "min.insync.replicas must be below replicas"),
        (CASSANDRA, {"cassandra": {"datacenters": [{"metadata": {"name": "dc2"}, "size": 3}]}},
         "CASSANDRA_LOCAL_DC dc1 not in ['dc2']"),
        (CASSANDRA, {"cassandra": {"datacenters": [{"metadata": {"name": "dc1"}, "size": 1}]}},
         "replication factor above the datacenter size 1"),
    ],
)
def test_operator_examples_catch(tmp_path: Path, doc: Any, change: Any, finding: str | None) -> None:
    docs = {"topic": copy.deepcopy(TOPIC), "cassandra": copy.deepcopy(CASSANDRA)}
    if doc is not None:
        docs["topic" if doc is TOPIC else "cassandra"]["spec"].update(change)
    files = []
    for name, obj in docs.items():
        files.append(tmp_path / f"{name}.yaml")
        files[-1].write_text(yaml.safe_dump(obj))
    errors = flink_deployment.check_operator_examples(files, objects(), 4)
    if finding is None:
        assert errors == []
    else:
        assert any(finding in e for e in errors), errors


def test_python_render_applies_the_namespace(tmp_path: Path) -> None:
    k8s = tmp_path / "k8s"
    k8s.mkdir()
    (k8s / "kustomization.yaml").write_text(yaml.safe_dump({"namespace": "prod", "resources": ["all.yaml"]}))
    (k8s / "all.yaml").write_text(yaml.safe_dump_all(
        [{"kind": "Namespace", "metadata": {"name": NS}}, {"kind": "Service", "metadata": {"name": "s"}}]))
    docs = k8s_render.render_python(tmp_path)
    assert [d["metadata"] for d in docs] == [{"name": "prod"}, {"name": "s", "namespace": "prod"}]


def test_kubectl_render_failure_is_reported(tmp_path: Path) -> None:
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("no kubectl")
    with pytest.raises(subprocess.CalledProcessError):
        k8s_render.render(tmp_path, kubectl)
