"""The replay tool's progress line: rewritten in place only on a terminal;
a file or a pipe gets occasional plain lines, without carriage returns or
escape codes."""

from __future__ import annotations

import asyncio
import io

from harness.replay.phase import Phase, ProgressWriter, show_progress


class Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_on_a_terminal_the_line_is_rewritten_and_ended() -> None:
    out = Stream(tty=True)
    writer = ProgressWriter(out, plain_every_s=30.0)
    writer.show("one", 0.0)
    writer.show("two", 1.0)
    writer.close()
    assert out.getvalue() == "\rone\x1b[K\rtwo\x1b[K\n"


def test_off_a_terminal_plain_lines_now_and_then() -> None:
    out = Stream(tty=False)
    writer = ProgressWriter(out, plain_every_s=30.0)
    for second in range(0, 65):
        writer.show(f"at {second}", float(second))
    writer.close()
    assert out.getvalue() == "at 0\nat 30\nat 60\n"


def test_off_a_terminal_nothing_when_asked() -> None:
    out = Stream(tty=False)
    writer = ProgressWriter(out, plain_every_s=0)
    writer.show("x", 0.0)
    writer.close()
    assert out.getvalue() == ""


def test_a_stream_without_isatty_is_not_a_terminal() -> None:
    class Bare(io.StringIO):
        def isatty(self) -> bool:
            raise ValueError("closed")

    assert not ProgressWriter(Bare()).tty
    assert not ProgressWriter(io.StringIO()).tty


def _run_progress(out: Stream) -> str:
    phase = Phase("replay", 100.0, 1000)

    async def main() -> None:
        task = asyncio.create_task(show_progress(phase, lambda: 0, lambda: 0.0,
                                                 ProgressWriter(out, plain_every_s=3600.0), interval_s=0.01))
        await asyncio.sleep(0.1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    asyncio.run(main())
    return out.getvalue()


def test_show_progress_follows_the_stream() -> None:
    on_tty = _run_progress(Stream(tty=True))
    assert on_tty.count("\r") >= 2 and "replay: 0/1000 tags" in on_tty and on_tty.endswith("\n")
    piped = _run_progress(Stream(tty=False))
    assert "\r" not in piped and "\x1b" not in piped
    assert piped.count("\n") == 1 and piped.startswith("replay: 0/1000 tags")
