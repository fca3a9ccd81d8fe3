"""Optional bearer-token auth and the header limits on the real API processes
(uvicorn `--http httptools --loop uvloop`, as deployed), against the real
Kafka topic and Cassandra keyspace: a refused request stores nothing."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from tests.e2e.conftest import api_service
from tests.integration.api_env import VALID_TAG, Keyspace, Topic, assert_problem, ingest_env, query_env
from tests.integration.test_bad_input import send_raw

pytestmark = pytest.mark.integration

TOKEN = "7d0c3f1e9a5b4c2d8e6f0a1b3c5d7e9f"
TR = "2022-03-22T12:00:00_2022-03-22T12:10:00"


@pytest.fixture(scope="module")
def ingest_with_auth(api_topic: Topic, tmp_path_factory) -> Iterator[str]:
    env = ingest_env(api_topic.bootstrap, api_topic.name, INGEST_AUTH_TOKEN=TOKEN)
    with api_service("ingest_api", env, tmp_path_factory.mktemp("i") / "ingest.log") as url:
        yield url


@pytest.fixture(scope="module")
def query_with_auth(api_keyspace: Keyspace, tmp_path_factory) -> Iterator[str]:
    env = query_env(api_keyspace, QUERY_AUTH_TOKEN=TOKEN)
    with api_service("query_api", env, tmp_path_factory.mktemp("q") / "query.log") as url:
        yield url


def test_ingest_refuses_a_tag_without_the_token_and_stores_nothing(ingest_with_auth, api_topic):
    before = api_topic.end_offsets()
    body = orjson.dumps(VALID_TAG)
    for headers in ({}, {"authorization": "Bearer wrong-token-wrong-token"}, {"authorization": f"Basic {TOKEN}"}):
        response = httpx.post(f"{ingest_with_auth}/user_tags", content=body, headers=headers, timeout=30)
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert api_topic.end_offsets() == before

    response = httpx.post(f"{ingest_with_auth}/user_tags", content=body,
                          headers={"authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert response.status_code == 204, response.text
    assert sum(api_topic.end_offsets()) == sum(before) + 1
    # Health stays open: orchestrators probe without credentials.
    assert httpx.get(f"{ingest_with_auth}/health/ready", timeout=30).status_code == 200


def test_query_needs_the_token_and_health_stays_open(query_with_auth):
    for path in (f"/user_profiles/c?time_range={TR}", f"/aggregates?time_range={TR}&action=BUY&aggregates=COUNT",
                 "/openapi.json", "/docs", "/metrics"):
        response = httpx.get(f"{query_with_auth}{path}", timeout=30)
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
    auth = {"authorization": f"Bearer {TOKEN}"}
    answer = httpx.get(f"{query_with_auth}/user_profiles/c?time_range={TR}", headers=auth, timeout=30)
    assert answer.json() == {"cookie": "c", "views": [], "buys": []}
    assert httpx.get(f"{query_with_auth}/health/live", timeout=30).status_code == 200
    assert httpx.get(f"{query_with_auth}/health/ready", timeout=30).status_code == 200


@pytest.mark.parametrize("request_headers", [
    b"".join(b"X-H%d: v\r\n" % i for i in range(10_000)),  # too many
    b"X-Large: " + b"v" * 100_000 + b"\r\n",  # too large (httptools itself takes 10 MB headers)
    b"Cookie: " + b"c" * 20_000 + b"\r\n",
])
def test_header_limits_hold_on_the_real_server(query_with_auth, ingest_with_auth, api_topic, request_headers):
    before = api_topic.end_offsets()
    for url, target in ((query_with_auth, f"/user_profiles/c?time_range={TR}".encode()),
                        (ingest_with_auth, b"/user_tags")):
        parts = urlsplit(url)
        body = orjson.dumps(VALID_TAG)
        answer = send_raw(parts.hostname, parts.port,
                          b"POST " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                          + b"Authorization: Bearer " + TOKEN.encode() + b"\r\n" + request_headers
                          + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        head, _, payload = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 431 "), head
        assert b"content-type: application/problem+json" in head.lower()
        assert orjson.loads(payload)["status"] == 431
    assert api_topic.end_offsets() == before
