"""How a replay run sends, asks and probes (harness/replay/runner.py's `Runner`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RunnerConfig:
    base_url: str = "http://127.0.0.1:8080"  # where tags go (and queries, unless query_url)
    query_url: str | None = None
    tag_concurrency: int = 64
    profile_concurrency: int = 32
    aggregate_concurrency: int = 4
    profile_every: int = 10
    aggregate_every: int = 1_000
    profile_age_s: float = 10.0
    aggregate_age_s: float = 60.0
    tag_timeout_s: float = 5.0
    profile_timeout_s: float = 10.0
    aggregate_timeout_s: float = 60.0
    profile_probe_every_s: float = 1.0  # 0 = no profile freshness probes
    profile_probe_interval_s: float = 0.2
    profile_probe_deadline_s: float = 30.0
    bucket_probes: bool = True
    bucket_probe_interval_s: float = 0.5
    bucket_probe_deadline_s: float = 120.0
    # Probes load the platform too: at most this many run at once (more are not started, and counted).
    max_profile_probes: int = 8
    max_bucket_probes: int = 4
    seed: int = 1
    progress: bool = True
    examples: int = 5  # wrong answers / drops kept per phase
