"""harness.deploy_check on the Docker side: each check passes a small valid
repository in tmp_path and names what one broken file breaks.

The front door's checks run on the real docker/haproxy.cfg (the template the
local stack and Compose share), copied into the fixture.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.deploy_check import compose, dockerfiles, haproxy

REPO = Path(__file__).resolve().parents[2]
HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)

# The fixture's job package, and the shared one (the repository's: flink_jobs and common).
JOB_PACKAGES = ("jobs", "common")
APP_ENV = {"KAFKA_BOOTSTRAP_SERVERS": "kafka:29092", "CASSANDRA_CONTACT_POINTS": "cassandra"}
HEALTHY = {"test": ["CMD", "true"]}


def compose_doc() -> dict[str, Any]:
    api = {"context": ".", "dockerfile": "docker/api.Dockerfile"}
    return {
        "name": "mini",
        "services": {
            "kafka": {
                "image": "apache/kafka:4.1.1",
                "environment": {"KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://kafka:29092"},
                "healthcheck": HEALTHY,
            },
            "cassandra": {"image": "cassandra:5.0.6", "healthcheck": HEALTHY},
            "init": {"image": "apache/kafka:4.1.1", "restart": "no",
                     "depends_on": {"kafka": {"condition": "service_healthy"}}},
            "ingest-api": {"image": "mini/api:${TAG:-dev}", "build": api, "environment": dict(APP_ENV),
                           "expose": ["8081"], "healthcheck": HEALTHY,
                           "depends_on": {"init": {"condition": "service_completed_successfully"}}},
            "query-api": {"image": "mini/api:dev", "build": api, "environment": dict(APP_ENV),
                          "expose": ["8082"], "healthcheck": HEALTHY,
                          "depends_on": {"cassandra": {"condition": "service_healthy"}}},
            "jobmanager": {"image": "mini/flink:dev",
                           "build": {"context": ".", "dockerfile": "docker/flink.Dockerfile"},
                           "command": ["standalone-job", "-pym", "jobs.main", "-pyfs", "/opt/app"],
                           "environment": dict(APP_ENV), "volumes": ["flink-data:/flink-data"]},
            "haproxy": {
                "image": "haproxy:2.6.31-alpine",
                "volumes": ["./docker/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro"],
                # As in the real docker-compose.yml: the variables docker/haproxy.cfg reads.
                "environment": yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["haproxy"][
                    "environment"
                ],
                "ports": ["${HTTP_PORT:-8080}:8080", "127.0.0.1:8404:8404"],
                "depends_on": {"ingest-api": {"condition": "service_healthy"},
                               "query-api": {"condition": "service_healthy"}},
            },
        },
        "volumes": {"flink-data": None},
    }


FILES = {
    "docker/api.Dockerfile": "ARG PYTHON_IMAGE=python:3.11.15-slim-bookworm\nFROM ${PYTHON_IMAGE}\n"
    "COPY --chown=1:1 app/ /app/app/\nCOPY pyproject.toml /app/\n",
    "docker/api.Dockerfile.dockerignore": "# only what the image copies\n*\n!app/\n!pyproject.toml\n",
    "docker/flink.Dockerfile": "ARG FLINK_IMAGE=flink:1.20.5-scala_2.12-java17\nARG FLINK_VERSION=1.20.5\n"
    f"ARG PYTHON_VERSION=3.11.15\nARG PYTHON_SHA256={'a' * 64}\n"
    "FROM maven:3 AS metrics\nARG FLINK_VERSION\n"
    "RUN mvn dependency:copy -Dartifact=org.apache.flink:flink-metrics-prometheus:${FLINK_VERSION} \\\n"
    "      -DoutputDirectory=/out\n"
    "FROM maven:3 AS operators\nRUN mvn package && cp target/x.jar /opt/app/ops.jar\n"
    "FROM ${FLINK_IMAGE}\nCOPY jobs/ /opt/app/jobs/\n"
    "COPY --from=operators /opt/app/ops.jar /opt/app/ops.jar\n"
    "# The reporter:\nCOPY --from=metrics /out/ /opt/flink/plugins/metrics-prometheus/\n"
    "COPY --from=connectors /opt/flink/connectors /opt/flink/connectors\n"
    "COPY app/ /opt/app/common/\n"
    "ENV PYTHONPATH=/opt/app \\\n    FLINK_CONNECTOR_DIR=/opt/flink/connectors \\\n"
    "    FLINK_SINKS_JAR=/opt/app/ops.jar\n",
    "docker/flink-connectors.txt": "# group:artifact:version sha1\n"
    f"org.apache.flink:flink-sql-connector-kafka:3.4.0-1.20 {'b' * 40}\n",
    "requirements/flink.lock": "apache-flink==1.20.5 \\\n    --hash=sha256:00\n",
    "pyproject.toml": '[project]\nrequires-python = ">=3.11,<3.12"\n',
    "app/__init__.py": "",
    "jobs/__init__.py": "",
    "jobs/main.py": "",
}


def write(root: Path, doc: dict[str, Any] | None = None) -> Path:
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    shutil.copy(REPO / haproxy.CONFIG, root / haproxy.CONFIG)
    (root / "docker-compose.yml").write_text(yaml.safe_dump(doc or compose_doc()))
    return root


def services(doc: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = doc["services"]
    return result


def test_the_fixture_passes(tmp_path: Path) -> None:
    root = write(tmp_path)
    c = compose.load(root)
    assert compose.check_compose(root) == []
    assert dockerfiles.check_versions(root) == []
    assert dockerfiles.check_flink_image(root, JOB_PACKAGES) == []
    assert haproxy.check_compose_front_door(root, c) == []


Break = Callable[[dict[str, Any]], None]

COMPOSE_BREAKS: list[tuple[str, Break, str]] = [
    ("unknown dependency", lambda d: services(d)["init"]["depends_on"].update(zookeeper={}),
     "init: depends_on unknown service zookeeper"),
    ("healthy without healthcheck", lambda d: services(d)["cassandra"].pop("healthcheck"),
     "waits for cassandra to be healthy, but cassandra has no healthcheck"),
    ("completion of a restarting service", lambda d: services(d)["init"].update(restart="always"),
     "waits for init to complete, but init restarts"),
    ("cycle", lambda d: services(d)["kafka"].update(depends_on=["ingest-api"]),
     "-> ingest-api -> init -> kafka -> ingest-api"),
    ("unpinned image", lambda d: services(d)["cassandra"].update(image="cassandra:latest"), "is not pinned"),
    ("undeclared volume", lambda d: d.pop("volumes"), "volume flink-data is not declared"),
    ("missing bind source", lambda d: services(d)["kafka"].update(volumes=["./nowhere:/x"]),
     "bind-mount source ./nowhere does not exist"),
    ("variable without default", lambda d: services(d)["kafka"].update(image="apache/kafka:${KAFKA_TAG}"),
     "${KAFKA_TAG} has no default"),
    ("unadvertised Kafka address", lambda d: services(d)["query-api"]["environment"].update(
        KAFKA_BOOTSTRAP_SERVERS="kafka:9092"), "KAFKA_BOOTSTRAP_SERVERS kafka:9092 is not an advertised listener"),
    ("Cassandra host not a service", lambda d: services(d)["ingest-api"]["environment"].update(
        CASSANDRA_CONTACT_POINTS="cassandra-0"), "CASSANDRA_CONTACT_POINTS host cassandra-0 is not a service"),
    ("missing job module", lambda d: services(d)["jobmanager"]["command"].__setitem__(2, "jobs.gone"),
     "-pym jobs.gone: no such module"),
    ("job code elsewhere", lambda d: services(d)["jobmanager"]["command"].__setitem__(4, "/opt/other"),
     "-pyfs /opt/other is not where docker/flink.Dockerfile puts jobs.main"),
    ("missing Dockerfile", lambda d: services(d)["query-api"]["build"].update(dockerfile="docker/q.Dockerfile"),
     "dockerfile"),
]


@pytest.mark.parametrize(("what", "mutate", "finding"), COMPOSE_BREAKS, ids=[b[0] for b in COMPOSE_BREAKS])
def test_compose_refs_catch(tmp_path: Path, what: str, mutate: Break, finding: str) -> None:
    doc = compose_doc()
    mutate(doc)
    errors = compose.check_compose(write(tmp_path, doc))
    assert any(finding in e for e in errors), errors


@pytest.mark.parametrize(
    ("path", "text", "finding"),
    [
        ("docker/api.Dockerfile", "FROM python:3.11.15-slim-bookworm\nCOPY gone/ /app/\n", "source gone/ does not"),
        ("docker/api.Dockerfile.dockerignore", "*\n!app/\n", "COPY source pyproject.toml is excluded"),
        ("docker/api.Dockerfile", "FROM python:3.11.15-slim-bookworm\nCOPY app/*.nope /app/\n",
         "source app/*.nope does not"),
    ],
    ids=["missing COPY source", "COPY source ignored", "COPY wildcard matching nothing"],
)
def test_build_context_checks_catch(tmp_path: Path, path: str, text: str, finding: str) -> None:
    root = write(tmp_path)
    (root / path).write_text(text)
    errors = compose.check_compose(root)
    assert any(finding in e for e in errors), errors


@pytest.mark.parametrize(
    ("path", "old", "new", "finding"),
    [
        ("requirements/flink.lock", "1.20.5", "1.19.1", "pins apache-flink==1.19.1, the image is Flink 1.20.5"),
        ("docker/flink-connectors.txt", "3.4.0-1.20", "3.4.0-1.19", "is not built for Flink 1.20"),
        ("docker/flink-connectors.txt", "b" * 40, "nope", "bad line"),
        ("docker/flink.Dockerfile", "a" * 64, "a" * 10, "ARG PYTHON_SHA256 is not a SHA-256"),
        ("docker/flink.Dockerfile", "PYTHON_VERSION=3.11", "PYTHON_VERSION=3.12", "ARG PYTHON_VERSION=3.11.x"),
        ("docker/api.Dockerfile", "python:3.11.15", "python:3.12.1", "ARG PYTHON_IMAGE=python:3.11.x"),
        ("pyproject.toml", "<3.12", "<3.13", "no longer requires Python 3.11"),
        ("docker/flink.Dockerfile", "java17", "java11", "ARG FLINK_IMAGE=flink:X.Y.Z"),
    ],
)
def test_version_pins_catch(tmp_path: Path, path: str, old: str, new: str, finding: str) -> None:
    root = write(tmp_path)
    text = (root / path).read_text()
    assert old in text
    (root / path).write_text(text.replace(old, new))
    errors = dockerfiles.check_versions(root)
    assert any(finding in e for e in errors), errors


@pytest.mark.parametrize(
    ("old", "new", "finding"),
    [
        ("FLINK_SINKS_JAR=/opt/app/ops.jar", "FLINK_SINKS_JAR=/opt/app/sinks.jar",
         "ENV FLINK_SINKS_JAR=/opt/app/sinks.jar is not where the image copies it"),
        ("FLINK_CONNECTOR_DIR=/opt/flink/connectors", "FLINK_CONNECTOR_DIR=/opt/connectors",
         "ENV FLINK_CONNECTOR_DIR=/opt/connectors is not where"),
        ("COPY app/ /opt/app/common/", "COPY app/ /opt/app/shared/", "common/ is not copied into PYTHONPATH"),
        ("FLINK_SINKS_JAR=/opt/app/ops.jar", "FLINK_SINKS_JAR=/opt/app/ops.jar FLINK_CHECKPOINT_DIR=/data",
         "ENV FLINK_CHECKPOINT_DIR overrides the cluster's checkpoint directory"),
        ("ARG FLINK_VERSION=1.20.5", "ARG FLINK_VERSION=1.20.4", "ARG FLINK_VERSION=1.20.4 is not the image's"),
        ("flink-metrics-prometheus:${FLINK_VERSION}", "flink-metrics-prometheus:1.20.5",
         "the Prometheus reporter org.apache.flink:flink-metrics-prometheus:${FLINK_VERSION} is not fetched"),
        ("/opt/flink/plugins/metrics-prometheus/", "/opt/flink/lib/", "nothing is copied into /opt/flink/plugins"),
        # Only the image that runs counts, not a build stage.
        ("    FLINK_SINKS_JAR=/opt/app/ops.jar\n",
         "    FLINK_SINKS_JAR=/opt/app/ops.jar\nFROM ${FLINK_IMAGE}\nENV FLINK_SINKS_JAR=/opt/app/ops.jar\n",
         "ENV FLINK_SINKS_JAR=/opt/app/ops.jar is not where"),
    ],
)
def test_flink_image_checks_catch(tmp_path: Path, old: str, new: str, finding: str) -> None:
    root = write(tmp_path)
    path = root / dockerfiles.FLINK_DOCKERFILE
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    errors = dockerfiles.check_flink_image(root, JOB_PACKAGES)
    assert any(finding in e for e in errors), errors


# --- the front door ---------------------------------------------------------------


def test_expand_follows_haproxy_conditionals() -> None:
    text = '.if defined(A)\nx "${A}"\n.if !defined(B)\ny\n.else\nz "${B}"\n.endif\n.endif\nw "${C}"\n'
    assert haproxy.expand(text, {"A": "1"}) == ('x 1\ny\nw \n', ["C"])
    assert haproxy.expand(text, {"A": "1", "B": "2", "C": "3"}) == ("x 1\nz 2\nw 3\n", [])
    assert haproxy.expand(text, {"C": "3"}) == ("w 3\n", [])


FRONT_DOOR_BREAKS: list[tuple[str, Break, str]] = [
    ("server not a service", lambda d: services(d)["haproxy"]["environment"].update(
        PROXY_QUERY_SERVER="query:8082"), "server query:8082 is not a compose service"),
    ("port not exposed", lambda d: services(d)["ingest-api"].update(expose=["9000"]),
     "ingest-api does not expose port 8081"),
    ("variable not set", lambda d: services(d)["haproxy"]["environment"].pop("PROXY_BIND"),
     "uses ${PROXY_BIND}, which the service's environment lacks"),
    ("bind not published", lambda d: services(d)["haproxy"].update(ports=["127.0.0.1:8404:8404"]),
     "binds :8080, which compose does not publish"),
    ("front door moved", lambda d: services(d)["haproxy"]["environment"].update(PROXY_BIND=":9090"),
     "the front door must listen on 8080"),
    ("other HAProxy line", lambda d: services(d)["haproxy"].update(image="haproxy:3.2.1"), "meant to be HAProxy 2.6"),
    ("config not mounted", lambda d: services(d)["haproxy"].update(volumes=[]), "haproxy.cfg is not mounted"),
]


@pytest.mark.parametrize(("what", "mutate", "finding"), FRONT_DOOR_BREAKS, ids=[b[0] for b in FRONT_DOOR_BREAKS])
def test_front_door_refs_catch(tmp_path: Path, what: str, mutate: Break, finding: str) -> None:
    doc = compose_doc()
    mutate(doc)
    root = write(tmp_path, doc)
    errors = haproxy.check_compose_front_door(root, compose.load(root))
    assert any(finding in e for e in errors), errors


def test_front_door_refs_catch_a_lost_route(tmp_path: Path) -> None:
    root = write(tmp_path)
    cfg = root / haproxy.CONFIG
    cfg.write_text(cfg.read_text().replace("path /user_tags", "path_beg /tags"))
    errors = haproxy.check_compose_front_door(root, compose.load(root))
    assert "haproxy.cfg: no path rule for /user_tags" in errors


@pytest.mark.skipif(HAPROXY is None, reason="no haproxy (make prereqs installs it)")
def test_haproxy_accepts_the_config_in_both_environments(tmp_path: Path) -> None:
    root = write(tmp_path)
    assert haproxy.check_haproxy(root, compose.load(root), HAPROXY) == []


@pytest.mark.skipif(HAPROXY is None, reason="no haproxy (make prereqs installs it)")
def test_haproxy_check_catches_a_broken_config(tmp_path: Path) -> None:
    root = write(tmp_path)
    cfg = root / haproxy.CONFIG
    cfg.write_text(cfg.read_text().replace("timeout server 65s", "timeout server sixty-five"))
    errors = haproxy.check_haproxy(root, compose.load(root), HAPROXY)
    # Refused with each environment: the local stack's (1 and 3 nodes) and Compose's.
    labels = {e.split(": haproxy -c")[0] for e in errors if ": haproxy -c" in e}
    assert labels == {"local stack, cluster size 1", "local stack, cluster size 3", "compose haproxy"}
    assert any("timeout server" in e for e in errors), errors
