"""The live counters and samples of one phase (step) of a run, the report
they make (harness/replay/report.py), the totals over phases, and the
progress line."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import TextIO

from harness.replay.report import (
    AggregateCounts,
    ClientUsage,
    DroppedTag,
    EndpointCounts,
    EndpointLatencies,
    Freshness,
    FreshnessReport,
    Percentiles,
    PhaseReport,
    ProfileCounts,
    QueryCounts,
    TagCounts,
    WrongAnswer,
)
from harness.replay.stats import Samples

ENDPOINTS = ("user_tags", "user_profiles", "aggregates")
QUERY_ENDPOINTS = ("user_profiles", "aggregates")
PROBE_KINDS = ("profile", "bucket")


class Phase:
    """Counters and samples of one phase, keyed by endpoint (or probe kind) as they are counted."""

    def __init__(self, name: str, rate: float | None, target_tags: int):
        self.name = name
        self.rate = rate
        self.target_tags = target_tags
        self.sent = 0
        self.accepted = 0
        self.dropped = 0
        self.drop_reasons: dict[str, int] = {}
        self.correct = dict.fromkeys(QUERY_ENDPOINTS, 0)
        self.wrong = dict.fromkeys(QUERY_ENDPOINTS, 0)
        self.indeterminate = 0  # profile answers that differ, but the platform may now legitimately give
        self.undetermined = 0  # profile picks not asked: the answer would depend on what may be dropped
        self.skipped = dict.fromkeys(QUERY_ENDPOINTS, 0)  # mix slots with nothing askable
        self.latency = {e: Samples() for e in ENDPOINTS}
        self.errors = dict.fromkeys(ENDPOINTS, 0)
        self.lag = Samples()  # ms from a tag's due time until it was sent
        self.profile_freshness = Samples()  # s
        self.bucket_freshness = Samples()  # s
        self.probe_timeouts = dict.fromkeys(PROBE_KINDS, 0)
        self.probes_not_started = dict.fromkeys(PROBE_KINDS, 0)
        self.probes: set[asyncio.Task] = set()
        self.examples: list[WrongAnswer] = []
        self.drop_examples: list[DroppedTag] = []
        self.started = time.monotonic()
        self.send_done: float | None = None
        self.last_response = self.started
        self.last_tag_response = self.started
        self.ended: float | None = None
        self.cpu_s = 0.0
        self.rss_mb = 0.0
        self.queue_max = 0
        self.aborted: str | None = None
        # The final checks only (Runner.verify):
        self.queries: int | None = None
        self.exact_at_first_try: dict[str, int] | None = None
        self.seconds_until_exact: Percentiles | None = None

    def exact_pct(self) -> float | None:
        answered = sum(self.correct.values()) + sum(self.wrong.values())
        return round(100.0 * sum(self.correct.values()) / answered, 3) if answered else None

    def report(self) -> PhaseReport:
        elapsed = (self.ended or time.monotonic()) - self.started
        busy = max(1e-9, self.last_tag_response - self.started)
        return PhaseReport(
            name=self.name,
            target_rate=self.rate,
            elapsed_s=round(elapsed, 2),
            tags=TagCounts(sent=self.sent, accepted=self.accepted, dropped=self.dropped,
                           drop_reasons=dict(self.drop_reasons),
                           achieved_rate=round(self.sent / busy, 1) if self.sent else 0.0),
            profiles=ProfileCounts(correct=self.correct["user_profiles"], wrong=self.wrong["user_profiles"],
                                   indeterminate=self.indeterminate, not_asked_undetermined=self.undetermined,
                                   skipped=self.skipped["user_profiles"]),
            aggregates=AggregateCounts(correct=self.correct["aggregates"], wrong=self.wrong["aggregates"],
                                       skipped=self.skipped["aggregates"]),
            exact_pct=self.exact_pct(),
            latency_ms=EndpointLatencies(*(self.latency[e].summary() for e in ENDPOINTS)),
            errors=EndpointCounts(*(self.errors[e] for e in ENDPOINTS)),
            freshness_s=FreshnessReport(profile=self._freshness("profile", self.profile_freshness),
                                        bucket=self._freshness("bucket", self.bucket_freshness)),
            client=ClientUsage(
                cpu_pct=round(100.0 * self.cpu_s / elapsed, 1) if elapsed > 0 else None,
                cpu_s=round(self.cpu_s, 2),
                cpu_ms_per_1000_tags=round(1e6 * self.cpu_s / self.sent, 1) if self.sent else None,
                rss_mb=round(self.rss_mb, 1),
                schedule_lag_ms=self.lag.summary(),
                tag_queue_max=self.queue_max,
            ),
            wrong_examples=list(self.examples),
            drop_examples=list(self.drop_examples),
            aborted=self.aborted,
            queries=self.queries,
            exact_at_first_try=None if self.exact_at_first_try is None else QueryCounts(**self.exact_at_first_try),
            seconds_until_exact=self.seconds_until_exact,
        )

    def _freshness(self, kind: str, samples: Samples) -> Freshness:
        p = samples.summary(3)
        return Freshness(count=p.count, p50=p.p50, p95=p.p95, p99=p.p99, max=p.max,
                         timeouts=self.probe_timeouts[kind], not_started=self.probes_not_started[kind])


def total_of(phases: list[Phase], examples: int) -> Phase:
    """One phase that sums up `phases` (keeping at most `examples` examples of each kind)."""
    total = Phase("total", None, 0)
    for p in phases:
        total.sent += p.sent
        total.accepted += p.accepted
        total.dropped += p.dropped
        for reason, n in p.drop_reasons.items():
            total.drop_reasons[reason] = total.drop_reasons.get(reason, 0) + n
        total.indeterminate += p.indeterminate
        total.undetermined += p.undetermined
        for e in QUERY_ENDPOINTS:
            total.correct[e] += p.correct[e]
            total.wrong[e] += p.wrong[e]
            total.skipped[e] += p.skipped[e]
        for e in ENDPOINTS:
            total.latency[e].extend(p.latency[e])
            total.errors[e] += p.errors[e]
        total.lag.extend(p.lag)
        total.profile_freshness.extend(p.profile_freshness)
        total.bucket_freshness.extend(p.bucket_freshness)
        for k in PROBE_KINDS:
            total.probe_timeouts[k] += p.probe_timeouts[k]
            total.probes_not_started[k] += p.probes_not_started[k]
        total.examples.extend(p.examples)
        total.drop_examples.extend(p.drop_examples)
        total.cpu_s += p.cpu_s
        total.queue_max = max(total.queue_max, p.queue_max)
    if phases:
        total.started = phases[0].started
        total.ended = phases[-1].ended or time.monotonic()
        total.last_response = max(p.last_response for p in phases)
        total.last_tag_response = max(p.last_tag_response for p in phases)
        total.rss_mb = phases[-1].rss_mb
    total.examples = total.examples[:examples]
    total.drop_examples = total.drop_examples[:examples]
    return total


# Off a terminal (a file, a pipe, CI), a plain line this often instead of the rewritten one.
PLAIN_PROGRESS_EVERY_S = 30.0


class ProgressWriter:
    """Where the progress line goes: on a terminal it is rewritten in place
    (carriage return, erase to end of line); elsewhere a log would fill with
    those, so it gets a plain line every `plain_every_s` seconds (0: nothing)."""

    def __init__(self, stream: TextIO | None = None, plain_every_s: float = PLAIN_PROGRESS_EVERY_S):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = is_terminal(self.stream)
        self.plain_every_s = plain_every_s
        self._last_plain: float | None = None
        self._drawn = False

    def show(self, line: str, now: float) -> None:
        if self.tty:
            self.stream.write(f"\r{line}\x1b[K")
            self._drawn = True
        elif self.plain_every_s > 0 and (self._last_plain is None or now - self._last_plain >= self.plain_every_s):
            self.stream.write(line + "\n")
            self._last_plain = now
        else:
            return
        self.stream.flush()

    def close(self) -> None:
        """End the rewritten line (a terminal only: plain lines end themselves)."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def progress_line(phase: Phase, rate: float, p99: dict[str, float | None], queued: int, cpu_pct: float) -> str:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"
    return (f"{phase.name}: {phase.sent}/{phase.target_tags} tags {rate:.0f}/s "
            f"204 {phase.accepted} drop {phase.dropped} | profiles {phase.correct['user_profiles']} ok "
            f"{phase.wrong['user_profiles']} wrong | aggregates {phase.correct['aggregates']} ok "
            f"{phase.wrong['aggregates']} wrong | p99 ms tag {ms(p99['user_tags'])} "
            f"prof {ms(p99['user_profiles'])} agg {ms(p99['aggregates'])} | queue {queued} "
            f"| cpu {cpu_pct:.0f}%")


async def show_progress(phase: Phase, queued: Callable[[], int], cpu: Callable[[], float],
                        writer: ProgressWriter | None = None, interval_s: float = 1.0) -> None:
    """A one-line summary of the phase every `interval_s` (until cancelled), through
    `writer` (default: stderr, rewritten only if it is a terminal)."""
    out = writer or ProgressWriter()
    marks = dict.fromkeys(ENDPOINTS, 0)
    last_sent, last_t = phase.sent, time.monotonic()
    cpu_last = cpu()
    try:
        while True:
            await asyncio.sleep(interval_s)
            now = time.monotonic()
            cpu_now = cpu()
            p99 = {}
            for e in ENDPOINTS:
                samples = phase.latency[e]
                p99[e] = samples.tail_p(marks[e], 0.99)
                marks[e] = len(samples)
            rate = (phase.sent - last_sent) / (now - last_t)
            cpu_pct = 100.0 * (cpu_now - cpu_last) / (now - last_t)
            last_sent, last_t, cpu_last = phase.sent, now, cpu_now
            out.show(progress_line(phase, rate, p99, queued(), cpu_pct), now)
    finally:
        out.close()
