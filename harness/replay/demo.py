"""`make demo`: the REES46 sample streamed through the front door as if it
happened now, gently, until Ctrl-C, so that the dashboard has something to show.

Each pass over the sample is paced in real time from now: tag i of a pass
is dated and sent at the pass's start + i / DEMO_RATE, so the newest tag is
always about now and the newest bucket follows the clock; the next pass
continues after the previous one (event time never goes back). The sample's
order is kept (each shopper's views and buys in sequence), its spacing is
not: its 2 h 50 min hold 20 busy minutes, two nearly empty night hours and a
busy half hour of 500 tags a minute, which compressed as they are would
leave the chart flat for minutes and then outrun a gentle rate.

    make up && make demo                   # DEMO_RATE=50 tags/s, tests/data/rees46-2019-10-head.csv
    DEMO_RATE=200 make demo

It reuses the replay tool: the REES46 reader (rees46.py), the runner and its
HTTP client and pacing (runner.py), its progress line (phase.py), without
queries or probes (a demo loads the platform only with tags).
"""

from __future__ import annotations

import sys
import time
from array import array
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from harness.local_stack.config import REPO_ROOT, StackSettings
from harness.replay.cli import run_async
from harness.replay.http import ClientError, Origin
from harness.replay.rees46 import Rees46Error, Rees46Source
from harness.replay.runner import Runner, RunnerConfig
from harness.replay.workload import format_tag_time, record_to_bytes, record_to_tag

SAMPLE = REPO_ROOT / "tests" / "data" / "rees46-2019-10-head.csv"
NEVER = 10**15  # a query "every NEVER tags": the demo asks none


class DemoSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    # Tags per second, evenly spaced.
    demo_rate: float = Field(default=50.0, gt=0, le=100_000)
    # The REES46 CSV to stream (docs/REPLAY.md, "REES46").
    demo_file: Path = SAMPLE


def pass_times(tags: int, start_ms: int, rate: float) -> list[int]:
    """The times of one pass of `tags` tags from `start_ms` at `rate` tags/s:
    tag i at start_ms + i / rate (whole milliseconds, rounded down), the same
    instants at which the runner sends them (runner.py paces tag i of a phase
    at its start + i / rate)."""
    return [start_ms + int(i * 1000 / rate) for i in range(tags)]


def next_pass_start(now_ms: int, previous_last_ms: int | None) -> int:
    """A pass starts now, or just after the previous pass's last tag if that is
    later (a pass sent slower than its schedule): event time never goes back."""
    return now_ms if previous_last_ms is None else max(now_ms, previous_last_ms + 1)


class LoopedSample:
    """The sample over and over, as an endless TagSource (harness/replay/workload.py):
    tag i is row i % n of pass i // n, dated by begin_pass()."""

    may_tie = True  # one user's rows share a second in the sample

    def __init__(self, sample: Rees46Source):
        if not sample.total:
            raise Rees46Error(f"{sample.path}: no view or purchase rows")
        self.sample = sample
        self.n = sample.total
        self.passes: list[array[int]] = []  # the times of every pass begun

    @property
    def total(self) -> int | None:
        return None

    def begin_pass(self, now_ms: int, rate: float) -> int:
        """Date the next pass from `now_ms` (after the previous pass's last tag); its number."""
        start = next_pass_start(now_ms, self.passes[-1][-1] if self.passes else None)
        self.passes.append(array("q", pass_times(self.n, start, rate)))
        return len(self.passes) - 1

    def time_ms(self, i: int) -> int:
        p = i // self.n
        if p >= len(self.passes):
            # Not dated yet: the runner's ledger asks the next unsent tag's time at the end of a
            # pass. A lower bound holds: the next pass starts after this one's last tag.
            return self.passes[-1][-1] + 1 if self.passes else 0
        return self.passes[p][i % self.n]

    def record(self, i: int) -> tuple:
        return (self.time_ms(i), *self.sample.record(i % self.n)[1:])

    def tag(self, i: int) -> dict:
        return record_to_tag(self.record(i))

    def tag_bytes(self, i: int) -> bytes:
        return record_to_bytes(self.record(i))

    def describe(self) -> dict[str, Any]:
        return {"kind": "rees46-demo", "file": str(self.sample.path), "tags_per_pass": self.n,
                "passes": len(self.passes)}


class StackDown(Exception):
    """The stack is not up (or not ready)."""


class Stalled(Exception):
    """The platform stopped keeping up with the demo's gentle rate."""


async def check_up(front_url: str, ingest_url: str) -> None:
    """StackDown unless the front door and the ingest API both say they are ready."""
    for what, url in (("the front door", front_url), ("the ingest API", ingest_url)):
        origin = Origin(url)
        try:
            status, _, _ = await origin.request(origin.request_bytes("GET", "/health/ready"), 3.0)
        except (ClientError, TimeoutError, OSError) as exc:
            raise StackDown(f"{what} does not answer at {url} ({type(exc).__name__})") from None
        finally:
            await origin.close()
        if status != 200:
            raise StackDown(f"{what} at {url} is not ready (GET /health/ready: {status})")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def stream(runner: Runner, source: LoopedSample, rate: float) -> None:
    """Pass after pass until cancelled (Ctrl-C) or the platform does not keep up."""
    while True:
        p = source.begin_pass(int(time.time() * 1000), rate)
        report = await runner.run_phase(rate, tags=source.n, name=f"pass {p + 1}",
                                        max_backlog_s=30.0)
        t = report.tags
        say(f"pass {p + 1} done: {t.accepted}/{t.sent} tags accepted ({t.dropped} dropped), "
            f"event time up to {format_tag_time(source.passes[p][-1])}")
        if report.aborted:
            raise Stalled(f"the platform does not keep up ({report.aborted})")


async def demo(settings: DemoSettings, stack: StackSettings, runner_box: list[Runner]) -> None:
    front = f"http://{stack.host}:{stack.front_port}"
    await check_up(front, f"http://{stack.host}:{stack.ingest_port}")
    source = LoopedSample(Rees46Source(settings.demo_file))
    # The front door sends every path but /user_tags to the query API, which serves the page.
    print(f"dashboard: {front}/dashboard", flush=True)
    say(f"streaming {settings.demo_file.name} ({source.n} tags a pass, dated as they are sent) to {front}/user_tags "
        f"at {settings.demo_rate:g} tags/s; Ctrl-C to stop")
    config = RunnerConfig(base_url=front, profile_every=NEVER, aggregate_every=NEVER,
                          profile_probe_every_s=0.0, bucket_probes=False)
    async with Runner(source, config) as runner:
        runner_box.append(runner)
        await stream(runner, source, settings.demo_rate)


def main(argv: list[str] | None = None) -> int:
    if argv:
        say(__doc__ or "")
        return 0 if argv[0] in ("-h", "--help") else 2
    settings, stack = DemoSettings(), StackSettings()
    runner_box: list[Runner] = []
    try:
        run_async(demo(settings, stack, runner_box))
    except KeyboardInterrupt:
        phases = runner_box[0].phases if runner_box else []
        sent, accepted = sum(p.sent for p in phases), sum(p.accepted for p in phases)
        say(f"\nstopped: {accepted}/{sent} tags accepted")
        return 0
    except StackDown as exc:
        say(f"demo: {exc}.\nStart the platform first: make up")
        return 1
    except Stalled as exc:
        say(f"demo: {exc}; see make status and make logs")
        return 1
    except (Rees46Error, OSError) as exc:
        say(f"demo: cannot read the sample: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
