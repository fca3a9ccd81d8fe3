"""The query API's request metrics (query_api/metrics.py): one series per route
template and status, never per raw path; answers of the guards count too."""

from __future__ import annotations

from fastapi.testclient import TestClient

from query_api.app import create_app
from query_api.config import QuerySettings
from query_api.pipeline import parse_prometheus, total

TOKEN = "s3cret-token-of-32-characters-xx"


def _count(client: TestClient, **labels: str) -> float:
    text = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    return total(parse_prometheus(text), "allezon_query_requests_total", **labels) or 0.0


def test_requests_are_counted_by_route_template_and_status() -> None:
    app = create_app(QuerySettings(query_auth_token=TOKEN))
    app.state.reader = object()  # never reached: the time_range check answers first
    client = TestClient(app, raise_server_exceptions=False)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    profile = "/user_profiles/{cookie:cookie}"
    before = {k: _count(client, endpoint=e, status=s) for k, (e, s) in {
        "live": ("/health/live", "200"), "bad": (profile, "400"), "401": (profile, "401"),
        "other": ("other", "404")}.items()}
    assert client.get("/health/live").status_code == 200
    for cookie in ("a", "b", "c%2Fd"):  # no time_range: 400, whatever the cookie
        assert client.get(f"/user_profiles/{cookie}", headers=auth).status_code == 400
    assert client.get("/user_profiles/x").status_code == 401  # the token guard, outside the routes
    assert client.get("/no/such/path", headers=auth).status_code == 404
    after = {k: _count(client, endpoint=e, status=s) for k, (e, s) in {
        "live": ("/health/live", "200"), "bad": (profile, "400"), "401": (profile, "401"),
        "other": ("other", "404")}.items()}
    assert {k: after[k] - before[k] for k in after} == {"live": 1, "bad": 3, "401": 0, "other": 1}
    # A 401 is answered before routing: it counts under `other`, not under a cookie.
    assert after["401"] == 0
    text = client.get("/metrics", headers=auth).text
    assert "/user_profiles/a" not in text and "c%2Fd" not in text
    samples = parse_prometheus(text)
    assert total(samples, "allezon_query_requests_total", status="401") >= 1  # type: ignore[operator]
    assert total(samples, "allezon_query_request_seconds_count", endpoint=profile) >= 3  # type: ignore[operator]
