"""The dashboard's page and the read-only endpoints it needs (/buckets/newest,
/dimensions), through a real query API on a real Cassandra keyspace."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.api_env import VALID_TAG, Keyspace, api_keyspace, assert_problem, query_url, range_of

pytestmark = pytest.mark.integration
__all__ = ["api_keyspace", "query_url"]  # fixtures used by name


def tag(minute: int, origin: str = "shop.example", brand: str = "Nike", action: str = "VIEW") -> dict:
    return {**VALID_TAG, "time": f"2022-03-22T12:{minute:02d}:30.000Z", "action": action, "origin": origin,
            "product_info": {**VALID_TAG["product_info"], "brand_id": brand}}


def newest(url: str, action: str) -> str | None:
    response = httpx.get(f"{url}/buckets/newest", params={"action": action}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["newest_bucket"]


def test_the_newest_bucket_is_found_in_event_time_and_followed_as_it_advances(query_url: str,
                                                                               api_keyspace: Keyspace):
    assert newest(query_url, "BUY") is None  # nothing stored yet
    api_keyspace.store_tag(tag(10), offset=1)
    api_keyspace.store_tag(tag(12), offset=2)
    # Dated 2022, far from the wall clock: found by a scan of the cube.
    assert newest(query_url, "VIEW") == "2022-03-22T12:12:00"
    assert newest(query_url, "BUY") is None
    # A newer bucket is found at once (a read from the last one found), not at the next scan.
    api_keyspace.store_tag(tag(15), offset=3)
    assert newest(query_url, "VIEW") == "2022-03-22T12:15:00"


def test_values_seen_are_counted_per_dimension_most_counted_first(query_url: str, api_keyspace: Keyspace):
    for offset, (origin, brand) in enumerate([("a.example", "Nike"), ("b.example", "Nike"), ("b.example", "Puma")]):
        api_keyspace.store_tag(tag(20, origin, brand), offset=100 + offset)
    api_keyspace.store_tag(tag(21, "c.example", "Puma", action="BUY"), offset=200)

    def seen() -> dict:
        response = httpx.get(f"{query_url}/dimensions",
                             params={"action": "VIEW", "time_range": range_of("2022-03-22T12:20:00", 2)}, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    answer = seen()
    assert answer["action"] == "VIEW"
    assert answer["origin"] == [{"value": "b.example", "count": 2}, {"value": "a.example", "count": 1}]
    assert answer["brand_id"] == [{"value": "Nike", "count": 2}, {"value": "Puma", "count": 1}]
    assert answer["category_id"] == [{"value": "shoes", "count": 3}]


@pytest.mark.parametrize(("path", "params", "field"), [
    ("/buckets/newest", {}, "action"),
    ("/buckets/newest", {"action": "CLICK"}, "action"),
    ("/buckets/newest", [("action", "VIEW"), ("action", "BUY")], "action"),
    ("/dimensions", {"action": "VIEW"}, "time_range"),
    ("/dimensions", {"action": "VIEW", "time_range": "2022-03-22T12:20:30_2022-03-22T12:22:00"}, "time_range"),
    ("/dimensions", {"action": "VIEW", "time_range": "2022-03-22T12:00:00_2022-03-22T13:01:00"}, "time_range"),
    ("/dimensions", {"action": "VIEW", "time_range": "2022-03-22T12:00:00"}, "time_range"),
    ("/dimensions", {"time_range": "2022-03-22T12:00:00_2022-03-22T12:01:00"}, "action"),
])
def test_bad_dashboard_queries_get_problem_documents(query_url: str, path: str, params, field: str):
    problem = assert_problem(httpx.get(f"{query_url}{path}", params=params, timeout=10), 400)
    assert field in str(problem), problem


def test_the_page_and_every_asset_it_loads_are_served(query_url: str):
    page = httpx.get(f"{query_url}/dashboard", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for asset, kind in [("uPlot.iife.min.js", "text/javascript"), ("uPlot.min.css", "text/css"),
                        ("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")]:
        assert f"/dashboard/assets/{asset}" in page.text
        response = httpx.get(f"{query_url}/dashboard/assets/{asset}", timeout=10)
        assert response.status_code == 200 and response.headers["content-type"].startswith(kind), asset
        assert len(response.content) > 100
    assert_problem(httpx.get(f"{query_url}/dashboard/assets/..%2Fconfig.py", timeout=10), 404)
    assert_problem(httpx.get(f"{query_url}/dashboard/assets/package.json", timeout=10), 404)
