"""The stream job's settings: the keys the Java side reads (SinkConfig, CubeConfig)
are exactly those flink_jobs/sinks.py passes, and the cube's bounds hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from flink_jobs.config import JobSettings
from flink_jobs.sinks import sink_settings

JAVA = Path(__file__).resolve().parents[2] / "flink_jobs" / "operators" / "src" / "main" / "java" / "allezon"


def test_the_java_side_reads_exactly_the_settings_passed() -> None:
    read = set()
    for source in (JAVA / "sinks" / "SinkConfig.java", JAVA / "cube" / "CubeConfig.java"):
        read |= set(re.findall(r'required\(m, "(\w+)"\)', source.read_text()))
    assert read == set(sink_settings(JobSettings()))


def test_defaults_follow_the_spec() -> None:
    s = JobSettings()
    assert s.event_retention_ms == 24 * 3600 * 1000
    assert 0 < s.cube_allowed_lateness_ms <= 5 * 60_000


@pytest.mark.parametrize("env", [{"CUBE_ALLOWED_LATENESS_MS": "300001"}, {"EVENT_RETENTION_MS": "60000"},
                                 {"CUBE_EMIT_INTERVAL_MS": "10000"}])
def test_out_of_range_cube_settings_are_refused(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError):
        JobSettings()
