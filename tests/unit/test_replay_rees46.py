"""The REES46 CSV -> user tag mapping (harness/replay/rees46.py, docs/REPLAY.md)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from common.tag import UserTag
from harness.replay.rees46 import NO_BRAND, NO_CATEGORY, Rees46Error, Rees46Source, map_row, price_cents

DATA = Path(__file__).resolve().parents[1] / "data" / "rees46-2019-10-head.csv"

ROW = {"event_time": "2019-10-01 00:00:01 UTC", "event_type": "view", "product_id": "17200506",
       "category_id": "2053013559792632471", "category_code": "furniture.living_room.sofa", "brand": "",
       "price": "543.10", "user_id": "519107250", "user_session": "566511c2-e2e3-422b-b695-cf8e6e792ca8"}


def test_a_view_row_becomes_a_view_tag():
    tag = dict(zip(("time_ms", "cookie", "country", "device", "action", "origin", "product_id", "brand_id",
                    "category_id", "price"), map_row(ROW), strict=True))
    assert tag["time_ms"] == 1569888001000  # 2019-10-01T00:00:01Z
    assert tag["action"] == "VIEW"
    assert tag["cookie"] == "519107250"
    assert tag["product_id"] == 17200506 and isinstance(tag["product_id"], int)
    assert tag["brand_id"] == NO_BRAND
    assert tag["category_id"] == "furniture.living_room.sofa"
    assert tag["price"] == 54310
    assert tag["device"] in ("PC", "MOBILE", "TV")
    assert tag["country"].startswith("C") and len(tag["country"]) == 3
    assert tag["origin"].startswith("rees46-") and 0 <= int(tag["origin"][7:]) < 1000


def test_purchases_are_buys_and_other_events_are_skipped():
    assert map_row({**ROW, "event_type": "purchase"})[4] == "BUY"
    assert map_row({**ROW, "event_type": "cart"}) is None
    assert map_row({**ROW, "event_type": "remove_from_cart"}) is None


def test_derived_fields_are_stable_per_user_and_session():
    a = map_row(ROW)
    same_session = map_row({**ROW, "product_id": "1", "event_time": "2019-10-01 00:10:00 UTC"})
    other_session = [map_row({**ROW, "user_session": f"s-{n}"}) for n in range(60)]
    assert (a[2], a[3], a[5]) == (same_session[2], same_session[3], same_session[5])
    assert {r[2] for r in other_session} == {a[2]}  # country follows the user
    assert len({r[3] for r in other_session}) == 3  # device follows the session
    assert len({r[5] for r in other_session}) > 40  # so does origin


@pytest.mark.parametrize("text, cents", [("35.79", 3579), ("0.00", 0), ("2574.07", 257407), ("5", 500),
                                         ("0.1", 10), ("21474836.47", 2**31 - 1)])
def test_prices_are_exact_integer_cents(text, cents):
    assert price_cents(text) == cents


@pytest.mark.parametrize("text", ["1.234", "abc", "21474836.48"])
def test_prices_that_do_not_fit_are_refused(text):
    with pytest.raises(Rees46Error):
        price_cents(text)


def test_empty_category_code_has_a_placeholder():
    assert map_row({**ROW, "category_code": ""})[8] == NO_CATEGORY


def test_the_head_file_maps_whole():
    source = Rees46Source(DATA)
    assert source.rows == 17_434
    assert source.mapped == Counter({"view": 17_055, "purchase": 214})
    assert source.skipped == Counter({"cart": 165})
    assert source.total == 17_269
    times = [source.time_ms(i) for i in range(source.total)]
    assert times == sorted(times)
    assert len({source.record(i)[1] for i in range(source.total)}) <= 4_504
    described = source.describe()
    assert described["first"] == "2019-10-01T00:00:00.000Z" and described["last"].startswith("2019-10-01T02:50")
    brands = Counter(source.record(i)[7] for i in range(source.total))
    assert 0.05 < brands[NO_BRAND] / source.total < 0.25


def test_every_mapped_tag_is_accepted_as_is_and_echoed_byte_for_byte():
    """The platform stores canonical JSON; the tool's bytes must be the same
    (its expected answers are compared byte-wise first)."""
    source = Rees46Source(DATA)
    for i in range(0, source.total, 7):
        accepted = UserTag.model_validate(source.tag(i))
        assert accepted.canonical_json() == source.tag_bytes(i)
        assert accepted.time_ms == source.time_ms(i)


def test_rebase_moves_the_first_event_to_the_given_instant():
    source = Rees46Source(DATA, rebase_to_ms=1_800_000_000_000, limit=100)
    assert source.total == 100
    assert source.time_ms(0) == 1_800_000_000_000
    plain = Rees46Source(DATA, limit=100)
    assert source.time_ms(99) - source.time_ms(0) == plain.time_ms(99) - plain.time_ms(0)


def test_rows_out_of_time_order_are_refused(tmp_path):
    path = tmp_path / "bad.csv"
    lines = DATA.read_text().splitlines()[:4]
    path.write_text("\n".join([lines[0], lines[3], lines[1]]) + "\n")
    with pytest.raises(Rees46Error, match="time order"):
        Rees46Source(path)
