"""First-run set-up says what Maven downloads (harness/local_stack/artifacts.py), and nothing when all is cached."""

from __future__ import annotations

import io
from pathlib import Path

from harness.local_stack.artifacts import DownloadReport

URL = "https://repo.maven.apache.org/maven2/org/lz4/lz4-java/1.8.0/lz4-java-1.8.0"


def report_of(lines: list[str]) -> str:
    out = io.StringIO()
    report = DownloadReport("kafka", Path("/tmp/kafka.maven.log"), stream=out)
    for line in lines:
        report.line(line + "\n")
    report.finish()
    return out.getvalue()


def test_each_jar_when_it_starts_and_when_done_with_its_size() -> None:
    text = report_of([
        f"[INFO] Downloading from central: {URL}.pom",
        f"[INFO] Downloaded from central: {URL}.pom (2.1 kB at 18 kB/s)",
        f"[INFO] Downloading from central: {URL}.jar",
        f"[INFO] Downloaded from central: {URL}.jar (683 kB at 295 kB/s)",
        "[INFO] BUILD SUCCESS",
    ])
    lines = text.splitlines()
    assert lines[0].startswith("kafka: downloading from Maven repository 'central'")
    assert lines[1] == f"kafka: downloading lz4-java-1.8.0.jar from {URL}.jar"
    assert lines[2] == "kafka: downloaded lz4-java-1.8.0.jar (683.0 kB)"
    assert lines[3].startswith("kafka: downloaded 2 files, 685.1 kB, in ")
    assert len(lines) == 4  # the pom only in the total


def test_quiet_when_everything_is_cached() -> None:
    assert report_of(["[INFO] Scanning for projects...", "[INFO] BUILD SUCCESS"]) == ""
