"""Bearer-token auth (common/auth.py) and header limits (common/http_limits.py)
on both app factories, in process (the real-server checks are in
tests/integration/test_auth.py)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from common.auth import BearerAuth
from common.http_limits import HeaderLimits
from ingest_api.app import create_app as create_ingest_app
from ingest_api.config import IngestSettings
from query_api.app import create_app as create_query_app
from query_api.config import QuerySettings

TOKEN = "s3cret-token-of-32-characters-xx"
TR = "2022-03-22T12:00:00_2022-03-22T12:10:00"


class _Store:
    async def tags(self, *args):
        return []

    async def buckets(self, *args):
        return {}


class _Reader:
    profiles = aggregates = _Store()

    def is_ready(self) -> bool:
        return True


def query_client(token: str | None = None, **settings) -> TestClient:
    app = create_query_app(QuerySettings(query_auth_token=token, **settings))
    app.state.reader = _Reader()  # no lifespan: no Cassandra needed
    return TestClient(app, raise_server_exceptions=False)


def ingest_client(token: str | None = None) -> TestClient:
    return TestClient(create_ingest_app(IngestSettings(ingest_auth_token=token)), raise_server_exceptions=False)


def middleware_classes(client: TestClient) -> list[type]:
    return [m.cls for m in client.app.user_middleware]


@pytest.mark.parametrize("make", [query_client, ingest_client])
def test_without_a_token_nothing_is_installed(make):
    """Auth off adds no per-request cost: the middleware is not in the stack."""
    for token in (None, ""):
        client = make(token)
        assert BearerAuth not in middleware_classes(client)
        assert "securitySchemes" not in client.app.openapi().get("components", {})


def test_a_short_token_is_refused_at_start_up():
    with pytest.raises(ValidationError):
        QuerySettings(query_auth_token="short")
    with pytest.raises(ValidationError):
        IngestSettings(ingest_auth_token="short")


@pytest.mark.parametrize("headers, error", [
    ({}, None),
    ({"authorization": f"Bearer {TOKEN}x"}, "invalid_token"),
    ({"authorization": f"Bearer {TOKEN[:-1]}"}, "invalid_token"),
    ({"authorization": "Bearer "}, "invalid_token"),
    ({"authorization": f"Basic {TOKEN}"}, "invalid_token"),
    ({"authorization": TOKEN}, "invalid_token"),
])
def test_missing_or_wrong_token_gets_401_problem_with_a_bearer_challenge(headers, error):
    client = query_client(TOKEN)
    for path in (f"/user_profiles/c?time_range={TR}", "/aggregates", "/metrics", "/openapi.json", "/nope"):
        response = client.get(path, headers=headers)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 401
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith("Bearer ")
        assert (f'error="{error}"' in challenge) if error else ("error=" not in challenge)
        assert TOKEN not in response.text


def test_the_right_token_passes_and_health_stays_open():
    client = query_client(TOKEN)
    auth = {"authorization": f"Bearer {TOKEN}"}
    assert client.get(f"/user_profiles/c?time_range={TR}", headers=auth).json() == {
        "cookie": "c", "views": [], "buys": []}
    assert client.get(f"/user_profiles/c?time_range={TR}", headers={"authorization": f"bearer {TOKEN}"}
                      ).status_code == 200  # the scheme is case-insensitive (RFC 7235)
    assert client.get("/health/live").status_code == 200
    assert client.get("/health/ready").status_code == 200
    schema = client.get("/openapi.json", headers=auth).json()
    assert schema["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert "401" in schema["paths"]["/aggregates"]["get"]["responses"]
    assert "401" not in schema["paths"]["/health/ready"]["get"]["responses"]


def test_ingest_requires_the_token_before_reading_the_tag():
    client = ingest_client(TOKEN)
    response = client.post("/user_tags", content=b"not even json")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/health/live").status_code == 200


@pytest.mark.parametrize("make", [query_client, ingest_client])
def test_too_many_or_too_large_headers_get_431_problem(make):
    client = make()
    assert HeaderLimits in middleware_classes(client)
    many = {f"x-h{i}": "v" for i in range(120)}
    large = {"x-large": "v" * (17 * 1024)}
    for headers in (many, large):
        response = client.get("/health/live", headers=headers)
        assert response.status_code == 431
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 431
    assert client.get("/health/live", headers={f"x-h{i}": "v" for i in range(50)}).status_code == 200


def test_header_limits_are_settings():
    client = query_client(http_max_headers=10, http_max_header_bytes=2048)
    assert client.get("/health/live", headers={f"x-h{i}": "v" for i in range(12)}).status_code == 431
    assert client.get("/health/live", headers={"x-large": "v" * 3000}).status_code == 431


def test_header_limits_come_before_auth():
    client = query_client(TOKEN)
    response = client.get("/aggregates", headers={"x-large": "v" * (17 * 1024)})
    assert response.status_code == 431
