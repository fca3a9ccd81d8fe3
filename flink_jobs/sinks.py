"""The job's Cassandra sinks are Java (flink_jobs/java/src/allezon/sinks/):
this builds their jar and attaches them to the SQL half's streams.

The jar is compiled with the JDK's `javac` against the Flink jars of the
installed apache-flink wheel and the connector jars (which hold the Cassandra
driver), and cached as `<flink_sinks_build_dir>/allezon-sinks-<digest>.jar`,
the digest covering the sources and the classpath's jar names. Set
FLINK_SINKS_JAR to use a prebuilt jar instead (the Docker image does).
Why Java: a cube or profile row that enters a Python function costs a
Java-to-Python crossing under one interpreter lock; see docs/BENCHMARKS.md.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from flink_jobs.config import JobSettings

log = logging.getLogger(__name__)

SOURCES = Path(__file__).resolve().parent / "java" / "src"


def _flink_lib_dir() -> Path:
    import pyflink

    return Path(pyflink.__file__).resolve().parent / "lib"


def _classpath(s: JobSettings) -> list[Path]:
    return sorted(_flink_lib_dir().glob("*.jar")) + sorted(s.flink_connector_dir.glob("*.jar"))


def _digest(sources: list[Path], classpath: list[Path]) -> str:
    h = hashlib.sha256()
    for src in sources:
        h.update(str(src.relative_to(SOURCES)).encode() + b"\0" + src.read_bytes() + b"\0")
    for jar in classpath:
        h.update(jar.name.encode() + b"\0")
    return h.hexdigest()[:16]


def sinks_jar(s: JobSettings) -> Path:
    """The sinks' jar: FLINK_SINKS_JAR if set, else built (once per source digest)."""
    if s.flink_sinks_jar is not None:
        if not s.flink_sinks_jar.is_file():
            raise SystemExit(f"FLINK_SINKS_JAR={s.flink_sinks_jar} is not a file")
        return s.flink_sinks_jar
    sources = sorted(SOURCES.rglob("*.java"))
    classpath = _classpath(s)
    jar = s.flink_sinks_build_dir / f"allezon-sinks-{_digest(sources, classpath)}.jar"
    s.flink_sinks_build_dir.mkdir(parents=True, exist_ok=True)
    with (s.flink_sinks_build_dir / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not jar.is_file():
            _compile(sources, classpath, jar)
    return jar


def _compile(sources: list[Path], classpath: list[Path], jar: Path) -> None:
    java_home = os.environ.get("JAVA_HOME")
    javac = (java_home and shutil.which("javac", path=os.path.join(java_home, "bin"))) or shutil.which("javac")
    if javac is None:
        raise SystemExit("javac not found: the job's Cassandra sinks are compiled with a JDK 17 (Debian: openjdk-17-jdk-headless)")
    with tempfile.TemporaryDirectory(prefix="allezon-sinks-") as work:
        classes = Path(work) / "classes"
        argv = [javac, "--release", "17", "-nowarn", "-encoding", "UTF-8",
                "-cp", os.pathsep.join(map(str, classpath)), "-d", str(classes), *map(str, sources)]
        log.info("compiling the Cassandra sinks (%d sources) into %s", len(sources), jar)
        result = subprocess.run(argv, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"javac failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        staging = Path(work) / jar.name
        with zipfile.ZipFile(staging, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nCreated-By: allezon flink_jobs.java_sinks\n\n")
            for f in sorted(classes.rglob("*.class")):
                z.write(f, f.relative_to(classes).as_posix())
        shutil.move(staging, jar)


def sink_settings(s: JobSettings) -> dict[str, str]:
    """What the Java side's SinkConfig reads (all strings)."""
    return {
        "contact_points": ",".join(s.cassandra_hosts),
        "port": str(s.cassandra_port),
        "local_dc": s.cassandra_local_dc,
        "keyspace": s.cassandra_keyspace,
        "consistency": s.cassandra_consistency,
        "request_timeout_ms": str(s.writer_request_timeout_ms),
        "max_in_flight": str(s.writer_concurrency),
        "batch_rows": str(s.writer_batch_rows),
        "batch_bytes": str(s.writer_batch_bytes),
        "flush_ms": str(s.writer_flush_ms),
        "profile_cap": str(s.profile_cap),
        "profile_trim_slack": str(s.profile_trim_slack),
    }


def attach(cube_changelog, tag_rows, s: JobSettings) -> None:
    """Attach the Java sinks to the cube's changelog and the tag rows (PyFlink
    DataStreams backed by Java streams: no Python on the way)."""
    from pyflink.java_gateway import get_gateway

    gateway = get_gateway()
    settings = gateway.jvm.java.util.HashMap()
    for key, value in sink_settings(s).items():
        settings.put(key, value)
    gateway.jvm.allezon.sinks.CassandraSinks.attach(cube_changelog._j_data_stream, tag_rows._j_data_stream, settings)
