"""`make demo` (harness/replay/demo.py): the sample dated as it is sent, pass after pass,
and a clear word instead of a traceback when the stack is not up."""

from __future__ import annotations

import socket
from pathlib import Path

import orjson
import pytest

from harness.replay import demo
from harness.replay.demo import LoopedSample, next_pass_start, pass_times
from harness.replay.rees46 import Rees46Source

# 2026-11-30T12:00:00.000Z
NOW_MS = 1_796_040_000_000

CSV = """event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session
2019-10-01 00:00:00 UTC,view,1,10,a.b,nike,1.50,7,s1
2019-10-01 00:00:00 UTC,view,2,10,a.b,nike,2.00,8,s2
2019-10-01 00:00:00 UTC,cart,2,10,a.b,nike,2.00,8,s2
2019-10-01 01:30:00 UTC,purchase,2,10,a.b,,2.00,8,s2
"""


def test_pass_times_from_now_at_the_rate() -> None:
    assert pass_times(4, NOW_MS, 50.0) == [NOW_MS, NOW_MS + 20, NOW_MS + 40, NOW_MS + 60]
    assert pass_times(3, NOW_MS, 3.0) == [NOW_MS, NOW_MS + 333, NOW_MS + 666]
    assert pass_times(0, NOW_MS, 50.0) == []


def test_a_pass_never_starts_before_the_previous_one_ended() -> None:
    assert next_pass_start(NOW_MS, None) == NOW_MS
    assert next_pass_start(NOW_MS, NOW_MS - 5_000) == NOW_MS
    assert next_pass_start(NOW_MS, NOW_MS + 5_000) == NOW_MS + 5_001


def test_the_looped_sample_is_dated_from_each_pass_start(tmp_path: Path) -> None:
    path = tmp_path / "sample.csv"
    path.write_text(CSV)
    source = LoopedSample(Rees46Source(path))
    assert source.total is None and source.n == 3  # the cart row is skipped
    assert source.begin_pass(NOW_MS, 10.0) == 0
    # The sample's 90-minute gap is gone: 100 ms apart at 10 tags/s, in the file's order.
    assert [source.time_ms(i) for i in range(3)] == [NOW_MS, NOW_MS + 100, NOW_MS + 200]
    # Before the next pass is dated, its first tag is known to come after this pass's last.
    assert source.time_ms(3) == NOW_MS + 201
    # The second pass was begun too early (its clock says 1 ms later): it goes on after the first.
    assert source.begin_pass(NOW_MS + 1, 10.0) == 1
    assert [source.time_ms(i) for i in range(3, 6)] == [NOW_MS + 201, NOW_MS + 301, NOW_MS + 401]
    tag = orjson.loads(source.tag_bytes(5))
    assert tag["time"] == "2026-11-30T12:00:00.401Z"
    assert tag["action"] == "BUY" and tag["cookie"] == "8"
    assert tag["product_info"] == {"product_id": 2, "brand_id": "(no brand)", "category_id": "a.b", "price": 200}
    assert source.tag(2) == {**orjson.loads(source.tag_bytes(2)), "time": "2026-11-30T12:00:00.200Z"}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_without_the_stack_it_says_make_up(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    monkeypatch.setenv("FRONT_PORT", str(_closed_port()))
    monkeypatch.setenv("ALLEZON_RUN_DIR", str(tmp_path))
    assert demo.main([]) == 1
    err = capsys.readouterr().err
    assert "does not answer" in err and "make up" in err and "Traceback" not in err
