"""What a replay measured, as dataclasses: one `PhaseReport` per phase (and
one for the totals) in a `RunReport` (docs/REPLAY.md, "Scoring and the report").

The field names are the JSON report's keys: `to_dict()` is the JSON form
(`dataclasses.asdict`, leaving out the optional figures a phase does not
have), and `RunReport.from_dict()` reads a report back (e.g. the output of
`allezon-replay --json`) with pydantic's validation of the same classes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pydantic import TypeAdapter


@dataclass
class Percentiles:
    """Nearest-rank percentiles of some samples (None when there are none)."""

    count: int = 0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None


@dataclass
class Freshness(Percentiles):
    """Seconds from a 204 until an answer shows it, and the probes that gave up or never started."""

    timeouts: int = 0
    not_started: int = 0


@dataclass
class EndpointLatencies:
    """Milliseconds from writing a request to its answer's last byte, per endpoint."""

    user_tags: Percentiles
    user_profiles: Percentiles
    aggregates: Percentiles

    def items(self) -> list[tuple[str, Percentiles]]:
        return [("user_tags", self.user_tags), ("user_profiles", self.user_profiles),
                ("aggregates", self.aggregates)]


@dataclass
class EndpointCounts:
    """Transport errors and timeouts (no answer at all), per endpoint."""

    user_tags: int = 0
    user_profiles: int = 0
    aggregates: int = 0


@dataclass
class QueryCounts:
    user_profiles: int = 0
    aggregates: int = 0


@dataclass
class TagCounts:
    sent: int
    accepted: int  # 204
    dropped: int  # anything else
    drop_reasons: dict[str, int]  # status, or the client error's name
    achieved_rate: float  # tags sent / seconds until the last tag's answer


@dataclass
class ProfileCounts:
    correct: int
    wrong: int
    indeterminate: int  # differed, but had become undetermined by then: not scored
    not_asked_undetermined: int  # picks whose answer the SPEC does not determine
    skipped: int  # mix slots with nothing askable


@dataclass
class AggregateCounts:
    correct: int
    wrong: int
    skipped: int


@dataclass
class FreshnessReport:
    profile: Freshness
    bucket: Freshness


@dataclass
class ClientUsage:
    """The replay tool's own cost over the phase."""

    cpu_pct: float | None  # of one core
    cpu_s: float
    cpu_ms_per_1000_tags: float | None
    rss_mb: float
    schedule_lag_ms: Percentiles  # a tag's due time -> sent
    tag_queue_max: int


@dataclass
class WrongAnswer:
    url: str
    status: int | None
    expected: str  # clipped
    got: str


@dataclass
class DroppedTag:
    index: int
    status: int | None
    body: str


_OPTIONAL = ("aborted", "queries", "exact_at_first_try", "seconds_until_exact")


@dataclass
class PhaseReport:
    name: str
    target_rate: float | None
    elapsed_s: float
    tags: TagCounts
    profiles: ProfileCounts
    aggregates: AggregateCounts
    exact_pct: float | None  # correct / (correct + wrong), both endpoints
    latency_ms: EndpointLatencies
    errors: EndpointCounts
    freshness_s: FreshnessReport
    client: ClientUsage
    wrong_examples: list[WrongAnswer]
    drop_examples: list[DroppedTag]
    aborted: str | None = None  # why the phase stopped early (the client backlog grew too long)
    # The final checks (Runner.verify) only:
    queries: int | None = None
    exact_at_first_try: QueryCounts | None = None
    seconds_until_exact: Percentiles | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in _OPTIONAL:
            if out[key] is None:
                del out[key]
        return out


@dataclass
class OracleFigures:
    tags: int  # acknowledged tags the oracle holds


@dataclass
class RunInfo:
    """How `allezon-replay` was run."""

    started_at: str
    command: str
    base_url: str
    query_url: str
    rate: float
    speed: float | None


@dataclass
class RunReport:
    source: dict[str, Any]  # the source's describe()
    phases: list[PhaseReport]
    total: PhaseReport
    oracle: OracleFigures
    run: RunInfo | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "phases": [p.to_dict() for p in self.phases],
                               "total": self.total.to_dict(), "oracle": asdict(self.oracle)}
        if self.run is not None:
            out["run"] = asdict(self.run)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunReport:
        return TypeAdapter(cls).validate_python(data)
