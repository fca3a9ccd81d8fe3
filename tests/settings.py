"""Where the test sessions run their own Kafka and Cassandra (so two sessions,
or a session beside `make up`, do not collide)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

REPO = Path(__file__).resolve().parent.parent


class TestSettings(BaseSettings):
    __test__ = False  # not a test class for pytest
    model_config = SettingsConfigDict(env_prefix="ALLEZON_", extra="ignore")

    # local | docker | auto (docker when a Docker engine answers).
    test_backend: str = "auto"
    test_port_shift: int = 10_000
    test_run_dir: Path = REPO / ".run-test"
    # The replicated-cluster tests' own three-node stack.
    replicated_test_port_shift: int = 21_000
    replicated_test_run_dir: Path = REPO / ".run-repl-test"
    # Kills of each Flink process in tests/faults/test_process_kills.py (3 for the
    # recovery figures in docs/RELIABILITY.md).
    flink_kill_rounds: int = 1
    # Where tests leave what a person looks at afterwards (the dashboard's screenshots).
    test_artifacts_dir: Path = REPO / "test-artifacts"
