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
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from harness.local_stack.config import REPO_ROOT, GarbageCollector, StackSettings
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


# Maven's batch-mode transfer lines ("[INFO] Downloading from central: URL",
# "[INFO] Downloaded from central: URL (683 kB at 295 kB/s)").
_TRANSFER_RE = re.compile(
    r"^(?:\[INFO\] )?(?P<verb>Downloading|Downloaded) from (?P<repo>[\w.-]+): (?P<url>\S+)"
    r"(?: \((?P<size>[\d.,]+) (?P<unit>[kMG]?B)\b[^)]*\))?"
)
_UNITS = {"B": 1, "kB": 1000, "MB": 1000**2, "GB": 1000**3}  # Maven counts in SI units


def _size_text(n: float) -> str:
    for unit in ("GB", "MB", "kB"):
        if n >= _UNITS[unit]:
            return f"{n / _UNITS[unit]:.1f} {unit}"
    return f"{n:.0f} B"


class DownloadReport:
    """Says on stderr what Maven downloads, from its transfer lines: a line when
    a jar starts (what, from where) and one when it is done (its size); poms
    and metadata (small, hundreds on a cold cache) count only in the closing
    total. Nothing at all when Maven finds everything in its local repository."""

    def __init__(self, component: str, log_file: Path, stream: TextIO | None = None) -> None:
        self.component = component
        self.log_file = log_file
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.monotonic()
        self.announced = False
        self.files = 0
        self.bytes = 0.0

    def _say(self, text: str) -> None:
        print(f"{self.component}: {text}", file=self.stream, flush=True)

    def line(self, text: str) -> None:
        m = _TRANSFER_RE.match(text)
        if m is None:
            return
        url = m["url"]
        name = url.rsplit("/", 1)[-1]
        if m["verb"] == "Downloading":
            if not self.announced:
                self.announced = True
                self._say(f"downloading from Maven repository '{m['repo']}' (Maven log: {self.log_file})")
            if name.endswith(".jar"):
                self._say(f"downloading {name} from {url}")
            return
        self.files += 1
        size = float(m["size"].replace(",", "")) * _UNITS[m["unit"]] if m["size"] else 0.0
        self.bytes += size
        if name.endswith(".jar"):
            self._say(f"downloaded {name} ({_size_text(size) if m['size'] else 'size unknown'})")

    def finish(self) -> None:
        if self.files:
            self._say(f"downloaded {self.files} files, {_size_text(self.bytes)}, "
                      f"in {time.monotonic() - self.started:.0f} s")


def _mvn(component: str, work: Path, goals: list[str], maven_repo: Path, log_file: Path) -> None:
    """Run Maven on the pom in `work`, saying what it downloads (DownloadReport);
    StackError with the log's tail if it fails."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError("mvn (Apache Maven) not found on PATH; install it (Debian: apt-get install maven)")
    maven_repo.mkdir(parents=True, exist_ok=True)
    # Not -q: the transfer lines are INFO, and they are what DownloadReport reads.
    argv = [mvn, "-B", "-C", "-Dstyle.color=never", f"-Dmaven.repo.local={maven_repo}", *goals]
    report = DownloadReport(component, log_file)
    with log_file.open("w", encoding="utf-8") as out:
        with subprocess.Popen(argv, cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="replace") as proc:
            assert proc.stdout is not None
            for text in proc.stdout:
                out.write(text)
                report.line(text)
    report.finish()
    if proc.returncode != 0:  # the with block waited for it
        raise StackError(
            f"{component}: Maven failed with exit code {proc.returncode}; "
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


def gc_flags(collector: GarbageCollector) -> list[str]:
    """The JVM flag that selects `collector` (JDK 17's default is G1)."""
    return [f"-XX:+Use{collector}GC"]


def heap_mib(size: str) -> int:
    """'512m' -> 512, '1g' -> 1024."""
    return int(size[:-1]) * (1024 if size[-1] in "gG" else 1)
