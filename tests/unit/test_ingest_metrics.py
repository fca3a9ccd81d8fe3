"""The ingest metrics (ingest_api/metrics.py): the fast path and the FastAPI
route count the same answers, the newest event time and the in-flight gauge
are exported, and INGEST_METRICS_ENABLED=false records nothing."""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient

from ingest_api.app import create_app
from ingest_api.config import IngestSettings
from query_api.pipeline import parse_prometheus
from tests.unit.test_ingest_fast_path import VALID, _Writer

LATER = {**VALID, "time": "2026-11-30T12:00:00.123Z"}
LATER_MS = 1796040000123


def _client(fast: bool, fail: bool = False, **settings: object) -> TestClient:
    app = create_app(IngestSettings(**settings))
    app.state.writer = _Writer(fail)
    if not fast:
        app.fast_path = None
    return TestClient(app, raise_server_exceptions=False)


def _scrape(client: TestClient) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse_prometheus(response.text)


def _by_status(samples: dict[str, list[tuple[dict[str, str], float]]]) -> dict[str, float]:
    return {labels["status"]: value for labels, value in samples["allezon_ingest_tags_total"]}


@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "route"])
def test_answers_are_counted_by_status(fast: bool) -> None:
    client = _client(fast)
    before = _scrape(client)
    assert _by_status(before) == {"204": 0, "400": 0, "413": 0, "500": 0, "503": 0}
    assert before["allezon_ingest_newest_tag_time_ms"] == [({}, 0)]
    assert client.post("/user_tags", content=orjson.dumps(LATER)).status_code == 204
    assert client.post("/user_tags", content=orjson.dumps(VALID)).status_code == 204
    assert client.post("/user_tags", content=b"{nope").status_code == 400
    assert client.post("/user_tags", content=b" " * (64 * 1024 + 1)).status_code == 413
    after = _scrape(client)
    assert _by_status(after) == {"204": 2, "400": 1, "413": 1, "500": 0, "503": 0}
    # The largest event time accepted, not the last one.
    assert after["allezon_ingest_newest_tag_time_ms"] == [({}, LATER_MS)]
    count = [v for labels, v in after["allezon_ingest_request_seconds_count"]]
    assert count == [4]
    assert after["allezon_ingest_tags_in_flight"] == [({}, 0)]


@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "route"])
def test_unavailable_log_is_counted_503(fast: bool) -> None:
    client = _client(fast, fail=True)
    assert client.post("/user_tags", content=orjson.dumps(VALID)).status_code == 503
    assert _by_status(_scrape(client))["503"] == 1


def test_disabled_records_nothing() -> None:
    client = _client(True, ingest_metrics_enabled=False)
    assert client.app.state.metrics is None  # type: ignore[attr-defined]
    assert client.post("/user_tags", content=orjson.dumps(VALID)).status_code == 204
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "allezon_ingest" not in response.text


def test_in_flight_reads_the_writer() -> None:
    app = create_app(IngestSettings())
    app.state.metrics.watch_in_flight(lambda: 7)
    client = TestClient(app)
    assert _scrape(client)["allezon_ingest_tags_in_flight"] == [({}, 7)]
