"""Open-loop pacing: tag i of a phase is due at a time fixed by the clock
(the phase's start + i / rate, or by event time / speed), whatever the
platform answers. Due tags are handed on at once; when the platform is slow
they wait in the client queue, and the schedule lag shows it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from harness.replay.phase import Phase

TICK = 0.001  # scheduler granularity (s): tags due within it are sent together


class Pace:
    """Due times (loop time) of the tags first, first + 1, ... of one phase."""

    def __init__(self, start: float, rate: float, first: int, *, speed: float | None = None,
                 event_ms: Callable[[int], int] | None = None):
        self.start = start
        self.rate = rate
        self.interval = 1.0 / rate
        self.first = first
        # With `speed` and `event_ms` (tag index -> event time): event seconds per real
        # second, never faster than `rate`.
        self.event_ms = event_ms if speed else None
        self.speed = speed or 1.0
        self.event0 = event_ms(first) if event_ms is not None and speed else 0
        self.last_due = start - self.interval

    def due(self, i: int) -> float:
        if self.event_ms is not None:
            return max(self.last_due + self.interval,
                       self.start + (self.event_ms(i) - self.event0) / 1000.0 / self.speed)
        return self.start + (i - self.first) * self.interval


async def send_on_schedule(pace: Pace, end: int, phase: Phase, dispatch: Callable[[int, float], None], *,
                           queued: Callable[[], int], stopped: Callable[[], bool],
                           max_backlog_s: float | None = None) -> None:
    """Hand tags pace.first .. end - 1 to `dispatch(i, due)` as they fall due.

    Stops early when `stopped()`, or (setting `phase.aborted`) when more than
    `max_backlog_s` seconds of tags wait in the client queue (`queued()`): the
    platform does not keep up, and an open-loop run would otherwise go on for ever.
    """
    loop = asyncio.get_running_loop()
    i = pace.first
    while i < end and not stopped():
        now = loop.time()
        while i < end:
            nxt = pace.due(i)
            if nxt > now + TICK:
                break
            pace.last_due = nxt
            dispatch(i, nxt)
            i += 1
        backlog = queued()
        phase.queue_max = max(phase.queue_max, backlog)
        if max_backlog_s is not None and backlog > max_backlog_s * pace.rate:
            phase.aborted = (f"client backlog of {backlog} tags (> {max_backlog_s:g} s at "
                             f"{pace.rate:g}/s) after {i - pace.first} tags")
            break
        if i < end:
            # Timers have ~1 ms resolution: wake at most once per tick, send what is due by then.
            await asyncio.sleep(max(nxt - now, TICK))
