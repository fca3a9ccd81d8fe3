"""Java runtimes (Kafka, Cassandra) resolved from Maven Central and cached.

`resolve("kafka")` returns <cache>/artifacts/kafka/lib, a directory of jars
copied by `mvn dependency:copy-dependencies` from harness/local_stack/maven/kafka/pom.xml.
Maven runs with -C (fail on checksum mismatch) against its own local
repository (<cache>/m2 unless ALLEZON_MAVEN_REPO says otherwise).

The result is reused without running Maven when
  * <component>/pom.sha256 holds the sha256 of the current pom, and
  * the jars in lib/ are exactly those of <component>/manifest.sha256, with
    those hashes (verified on every reuse; a mismatch triggers a re-copy).
A file lock serialises concurrent resolutions (`make up` beside pytest).

`build_sinks()` builds the stream job's Cassandra sinks (the Maven module
flink_jobs/operators/) with `mvn package` into
<cache>/artifacts/flink-sinks/allezon-sinks-<digest>.jar, the digest covering
the module's pom and main sources: a jar is built once per version of them.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.local_stack.config import REPO_ROOT, StackSettings
from harness.local_stack.process import StackError, tail_file

log = logging.getLogger(__name__)

POM_DIR = Path(__file__).resolve().parent / "maven"
MANIFEST = "manifest.sha256"
POM_MARKER = "pom.sha256"
SINKS_MODULE = Path("flink_jobs") / "operators"


def components() -> list[str]:
    """Names of the components that have a pom (harness/local_stack/maven/<name>/pom.xml)."""
    return sorted(p.parent.name for p in POM_DIR.glob("*/pom.xml"))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write_manifest(lib: Path) -> Path:
    lines = [f"{_sha256(jar)}  {jar.name}\n" for jar in sorted(lib.iterdir()) if jar.is_file()]
    if not lines:
        raise StackError(f"Maven copied no jars into {lib}")
    manifest = lib.parent / MANIFEST
    manifest.write_text("".join(lines))
    return manifest


def verify(component_dir: Path) -> list[str]:
    """Problems with a cached lib dir against its manifest ([] when it is intact)."""
    manifest = component_dir / MANIFEST
    lib = component_dir / "lib"
    if not manifest.is_file() or not lib.is_dir():
        return ["manifest or lib dir missing"]
    expected: dict[str, str] = {}
    for line in manifest.read_text().splitlines():
        digest, _, name = line.partition("  ")
        expected[name] = digest
    present = {p.name for p in lib.iterdir() if p.is_file()}
    problems = [f"missing {n}" for n in sorted(expected.keys() - present)]
    problems += [f"unexpected {n}" for n in sorted(present - expected.keys())]
    for name in sorted(expected.keys() & present):
        if _sha256(lib / name) != expected[name]:
            problems.append(f"sha256 mismatch {name}")
    return problems


def _mvn(component: str, work: Path, goals: list[str], maven_repo: Path, log_file: Path) -> None:
    """Run Maven on the pom in `work`; StackError with the log's tail if it fails."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError("mvn (Apache Maven) not found on PATH; install it (Debian: apt-get install maven)")
    maven_repo.mkdir(parents=True, exist_ok=True)
    argv = [mvn, "-B", "-q", "-C", "-Dstyle.color=never", f"-Dmaven.repo.local={maven_repo}", *goals]
    with log_file.open("wb") as out:
        result = subprocess.run(argv, cwd=work, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise StackError(
            f"{component}: Maven failed with exit code {result.returncode}; "
            f"log {log_file}:\n{tail_file(log_file, 40)}"
        )


def _run_maven(component: str, pom: Path, out_lib: Path, maven_repo: Path, log_file: Path) -> None:
    # Maven works on a copy of the pom, so that nothing (target/) lands in the source tree.
    with tempfile.TemporaryDirectory(prefix=f"mvn-{component}-") as work:
        shutil.copyfile(pom, Path(work) / "pom.xml")
        log.info("%s: resolving jars with Maven (repo %s)", component, maven_repo)
        _mvn(component, Path(work), ["dependency:copy-dependencies", f"-DoutputDirectory={out_lib}"],
             maven_repo, log_file)


def resolve(component: str, settings: StackSettings | None = None) -> Path:
    """The lib dir (jars) of `component`, downloading and copying them if needed."""
    settings = settings or StackSettings()
    pom = POM_DIR / component / "pom.xml"
    if not pom.is_file():
        raise StackError(f"unknown component {component!r}: no {pom}")
    pom_sha = _sha256(pom)
    root = settings.cache_dir / "artifacts"
    target = root / component
    with _locked(root / f".{component}.lock"):
        marker = target / POM_MARKER
        if marker.is_file() and marker.read_text().strip() == pom_sha:
            problems = verify(target)
            if not problems:
                log.debug("%s: cached jars verified in %s", component, target / "lib")
                return target / "lib"
            log.warning("%s: cached jars fail verification (%s); copying them again",
                        component, "; ".join(problems[:5]))
        staging = root / f".{component}.staging-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "lib").mkdir(parents=True)
        try:
            _run_maven(component, pom, staging / "lib", settings.maven_repo_dir, root / f"{component}.maven.log")
            _write_manifest(staging / "lib")
            (staging / POM_MARKER).write_text(pom_sha + "\n")
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        count = sum(1 for _ in (target / "lib").iterdir())
        log.info("%s: %d jars ready in %s", component, count, target / "lib")
        return target / "lib"


def _sinks_sources(module: Path) -> list[Path]:
    return [module / "pom.xml", *sorted(p for p in (module / "src" / "main").rglob("*") if p.is_file())]


def sinks_jar_path(settings: StackSettings, repo: Path = REPO_ROOT) -> Path:
    """Where build_sinks() puts the jar of `repo`'s sinks (without building anything)."""
    module = repo / SINKS_MODULE
    digest = hashlib.sha256()
    for path in _sinks_sources(module):
        digest.update(path.relative_to(module).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return settings.cache_dir / "artifacts" / "flink-sinks" / f"allezon-sinks-{digest.hexdigest()[:16]}.jar"


def build_sinks(settings: StackSettings, repo: Path = REPO_ROOT) -> Path:
    """The jar of the stream job's Cassandra sinks, built with `mvn package` if this version is not cached."""
    jar = sinks_jar_path(settings, repo)
    with _locked(jar.parent / ".lock"):
        if jar.is_file():
            return jar
        # Maven builds a copy of the module, so that nothing (target/) lands in the source tree.
        with tempfile.TemporaryDirectory(prefix="mvn-flink-sinks-") as work:
            module = repo / SINKS_MODULE
            for path in _sinks_sources(module):
                copy = Path(work) / path.relative_to(module)
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, copy)
            log.info("flink-sinks: building %s with Maven (repo %s)", jar.name, settings.maven_repo_dir)
            _mvn("flink-sinks", Path(work), ["-DskipTests", "package"], settings.maven_repo_dir,
                 jar.parent / "maven.log")
            built = sorted((Path(work) / "target").glob("*.jar"))
            if len(built) != 1:
                raise StackError(f"flink-sinks: expected one jar in target/, Maven built {built}")
            staging = jar.with_suffix(f".staging-{os.getpid()}")
            shutil.copyfile(built[0], staging)
            staging.rename(jar)
        log.info("flink-sinks: %s ready", jar)
        return jar


def lib_dir(component: str, settings: StackSettings) -> Path:
    """Where resolve() puts the jars of `component` (without resolving anything)."""
    return settings.cache_dir / "artifacts" / component / "lib"


def java_executable(settings: StackSettings) -> str:
    """The `java` to run: $JAVA_HOME/bin/java if set, else the one on PATH."""
    java_home = settings.java_home
    if java_home is not None and (java_home / "bin" / "java").is_file():
        return str(java_home / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise StackError("java not found (need OpenJDK 17; Debian: apt-get install openjdk-17-jre-headless)")
    return found


def heap_mib(size: str) -> int:
    """'512m' -> 512, '1g' -> 1024."""
    return int(size[:-1]) * (1024 if size[-1] in "gG" else 1)
