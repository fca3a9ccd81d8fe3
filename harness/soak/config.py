"""`make soak`'s variables (SOAK_TAGS, SOAK_SAMPLE_S, ...): the defaults of the options of the same names."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from harness.local_stack.config import REPO_ROOT


class SoakSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOAK_", env_file=None, extra="ignore", case_sensitive=False,
                                      env_ignore_empty=True, validate_by_name=True, validate_by_alias=True)

    tags: int = Field(default=10_000_000, ge=1)
    sample_s: float = Field(default=60.0, gt=0)
    seed: int = 1  # the reference workload's default seed
    # Produced in chunks, each only once it cannot take the job group's lag over max_lag tags.
    chunk: int = Field(default=20_000, ge=1)
    max_lag: int = Field(default=200_000, ge=1)
    out: Path = REPO_ROOT / "docs" / "soak"
    # Verification: profiles asked, filtered aggregate queries asked, and how long a
    # wrong answer is asked again before it counts (the SPEC's freshness bound).
    profiles: int = Field(default=500, ge=0)
    filtered: int = Field(default=100, ge=0)
    verify_deadline_s: float = Field(default=60.0, gt=0)
    # The run aborts when the job's committed offsets do not move for this long while it lags.
    stall_s: float = Field(default=900.0, gt=0)
    # The job's own variable (the retained window of event time). The job's
    # environment wins when it has it; a `make up` started without it retains
    # more (24 h), so checking the last hour is then still sound.
    event_retention_ms: int = Field(default=3_600_000, gt=0, validation_alias="EVENT_RETENTION_MS")
