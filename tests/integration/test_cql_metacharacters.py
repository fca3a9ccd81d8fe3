"""CQL metacharacters in every string a request carries (issue 5, "Security").

Every statement is prepared and every value bound (query_api/store.py), so a
quote, a comment or `' OR 1=1` is just data: the query side answers exactly the
stored values (or nothing) and changes nothing; the ingest side stores such a
tag exactly as sent. The stream job copies the record's `tag` text into
Cassandra verbatim, so the tag's end-to-end path is covered by the Kafka check
here plus the stored-tag queries below.
"""

from __future__ import annotations

import httpx
import orjson
import pytest

from common.tag import UserTag
from tests.integration.api_env import VALID_TAG

pytestmark = pytest.mark.integration

NASTY = [
    "'", '"', ";", "--", "/*", "*/", "%", "_", "\\", "' OR 1=1", "' OR '1'='1", "x'; DROP TABLE user_profiles; --",
    "\"; TRUNCATE aggregates; /*", "$$", "?", ":name", "%27", "\x00", "🍪'ć", "\u202e'",
]
TR = "2022-03-22T12:00:00_2022-03-22T12:10:00"


def nasty_tag(i: int, value: str) -> dict:
    return {**VALID_TAG, "time": f"2022-03-22T12:0{i % 10}:00.000Z", "cookie": value, "country": value,
            "origin": value, "product_info": {"product_id": value, "brand_id": value, "category_id": value,
                                              "price": 100 + i}}


@pytest.fixture(scope="module")
def stored(api_keyspace, query_url):
    """One tag per nasty value, stored as the job stores them, and a normal one."""
    tags = [nasty_tag(i, value) for i, value in enumerate(NASTY)]
    for offset, t in enumerate([*tags, VALID_TAG]):
        api_keyspace.store_tag(t, offset=offset)
    return tags


def canonical(t: dict) -> dict:
    return orjson.loads(UserTag.model_validate(t).canonical_json())


@pytest.mark.parametrize("value", NASTY)
def test_profile_of_a_nasty_cookie_is_exactly_its_tag(stored, query_url, api_keyspace, value):
    before = api_keyspace.snapshot()
    [expected] = [canonical(t) for t in stored if t["cookie"] == value]
    for method in ("GET", "POST"):
        # The cookie goes in the path, percent-encoded (httpx encodes '%', '?', '#' and the rest).
        response = httpx.request(method, f"{query_url}/user_profiles/{quote(value)}", params={"time_range": TR},
                                 timeout=30)
        assert response.status_code == 200, response.text
        assert response.json() == {"cookie": value, "views": [], "buys": [expected]}
    unknown = httpx.get(f"{query_url}/user_profiles/{quote(value + 'x')}", params={"time_range": TR}, timeout=30)
    assert unknown.json() == {"cookie": value + "x", "views": [], "buys": []}
    assert api_keyspace.snapshot() == before


@pytest.mark.parametrize("value", NASTY)
@pytest.mark.parametrize("dimension", ["origin", "brand_id", "category_id"])
def test_aggregates_filtered_by_a_nasty_value_count_exactly_its_tag(stored, query_url, api_keyspace, value,
                                                                    dimension):
    before = api_keyspace.snapshot()
    [t] = [t for t in stored if t["origin"] == value]
    minute = int(t["time"][15])
    params = [("time_range", TR), ("action", "BUY"), ("aggregates", "COUNT"), ("aggregates", "SUM_PRICE"),
              (dimension, value)]
    answer = httpx.get(f"{query_url}/aggregates", params=params, timeout=30).json()
    assert answer["columns"] == ["1m_bucket", "action", dimension, "count", "sum_price"]
    expected = [[f"2022-03-22T12:0{m}:00", "BUY", value, *(("1", str(t["product_info"]["price"])) if m == minute
                                                             else ("0", "0"))] for m in range(10)]
    assert answer["rows"] == expected
    # A value nobody sent: all buckets zero.
    params[-1] = (dimension, value + "' OR ''='")
    zeros = httpx.get(f"{query_url}/aggregates", params=params, timeout=30).json()
    assert {(row[3], row[4]) for row in zeros["rows"]} == {("0", "0")}
    assert api_keyspace.snapshot() == before


def test_ingest_stores_nasty_strings_exactly(ingest_url, api_topic):
    """Every string field of a tag sent end to end to the log: the record holds
    exactly what was sent (the job writes its `tag` text verbatim)."""
    before = sum(api_topic.end_offsets())
    sent = [nasty_tag(i, value) for i, value in enumerate(NASTY)]
    for t in sent:
        response = httpx.post(f"{ingest_url}/user_tags", content=orjson.dumps(t), timeout=30)
        assert response.status_code == 204, (t["cookie"], response.text)
    assert sum(api_topic.end_offsets()) == before + len(sent)
    records = {r["cookie"]: r for r in api_topic.records() if r["cookie"] in NASTY}
    assert set(records) == set(NASTY)
    for t in sent:
        record = records[t["cookie"]]
        assert orjson.loads(record["tag"]) == t
        assert (record["origin"], record["brand_id"], record["category_id"]) == (t["cookie"],) * 3


def quote(value: str) -> str:
    from urllib.parse import quote as percent_encode

    return percent_encode(value, safe="")
