"""GET /user_profiles's fast path (query_api/fast_path.py) answers exactly as the
FastAPI route it bypasses: every case is sent to both and the answers compared,
and the plainly valid ones are shown to be served without FastAPI. In
process, with the profile store stubbed (no lifespan, no Cassandra)."""

from __future__ import annotations

import pytest
from cassandra import OperationTimedOut
from fastapi.testclient import TestClient

from query_api.app import create_app
from query_api.config import QuerySettings
from query_api.fast_path import plain_profile_query
from query_api.pipeline import parse_prometheus, total
from query_api.routes import PROFILE_PATH

TOKEN = "s3cret-token-of-32-characters-xx"
TR = "2022-03-22T12:00:00_2022-03-22T12:10:00"
TAG = '{"time":"2022-03-22T12:05:00.000Z","cookie":"c"}'


class _Store:
    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.reads: list[tuple] = []

    async def tags(self, cookie: str, action: str, start_ms: int, end_ms: int, limit: int) -> list[str]:
        self.reads.append((cookie, action, start_ms, end_ms, limit))
        if self.fail is not None:
            raise self.fail
        return [TAG] * min(limit, 2 if action == "VIEW" else 1)


class _Reader:
    def __init__(self, store: _Store | None) -> None:
        self.profiles = store


async def _not_fastapi(scope, receive, send) -> None:
    """Stands in for FastAPI's whole stack: what it answers, FastAPI would have."""
    await send({"type": "http.response.start", "status": 418, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def client(fast: bool, store: _Store | None, token: str | None = None, fastapi: bool = True) -> TestClient:
    app = create_app(QuerySettings(query_auth_token=token))
    app.state.reader = _Reader(store)
    if not fast:
        app.fast_path = None  # every request through FastAPI
    if not fastapi:
        app.middleware_stack = _not_fastapi  # Starlette calls this prebuilt stack as it is
    return TestClient(app, raise_server_exceptions=False)


def answer(response) -> tuple:
    headers = {k: v for k, v in response.headers.items() if k not in ("date", "server")}
    return response.status_code, headers, response.content


PLAIN = {
    "plain": f"/user_profiles/c?time_range={TR}",
    "limit": f"/user_profiles/c?time_range={TR}&limit=1",
    "limit 0": f"/user_profiles/c?time_range={TR}&limit=0",
    "limit 200": f"/user_profiles/c?limit=200&time_range={TR}",
    "milliseconds": "/user_profiles/c?time_range=2022-03-22T12:00:00.001_2022-03-22T12:10:00.999",
    "an unknown parameter": f"/user_profiles/c?time_range={TR}&x=1",
    "escaped slash and space": f"/user_profiles/a%2Fb%20c?time_range={TR}",
    "hash and question mark": f"/user_profiles/a%23b%3F?time_range={TR}",
    "newline": f"/user_profiles/a%0Ab?time_range={TR}",
    "unicode": f"/user_profiles/%C5%BC%C3%B3%C5%82w?time_range={TR}",
    "a slash in the path": f"/user_profiles/a/b?time_range={TR}",
    "1,000 characters": f"/user_profiles/{'c' * 1000}?time_range={TR}",
}
REFUSED = {
    "no time_range": "/user_profiles/c",
    "empty time_range": "/user_profiles/c?time_range=",
    "bad time_range": "/user_profiles/c?time_range=yesterday",
    "reversed time_range": "/user_profiles/c?time_range=2022-03-22T12:10:00_2022-03-22T12:00:00",
    "time_range twice": f"/user_profiles/c?time_range={TR}&time_range={TR}",
    "limit twice": f"/user_profiles/c?time_range={TR}&limit=1&limit=2",
    "limit 201": f"/user_profiles/c?time_range={TR}&limit=201",
    "limit -1": f"/user_profiles/c?time_range={TR}&limit=-1",
    "limit +5": f"/user_profiles/c?time_range={TR}&limit=%2B5",
    "limit 05": f"/user_profiles/c?time_range={TR}&limit=05",
    "limit empty": f"/user_profiles/c?time_range={TR}&limit=",
    "no cookie": f"/user_profiles/?time_range={TR}",
    "cookie not UTF-8": f"/user_profiles/%ff?time_range={TR}",
    "cookie too long": f"/user_profiles/{'c' * 1025}?time_range={TR}",
    "time_range not UTF-8": "/user_profiles/c?time_range=%ff",
}
HEADERS = {
    "too many headers": {f"x-h{i}": "v" for i in range(120)},
    "headers too large": {"x-large": "v" * (17 * 1024)},
}


@pytest.mark.parametrize("url", [*PLAIN.values(), *REFUSED.values()], ids=[*PLAIN, *REFUSED])
@pytest.mark.parametrize("fail", [None, OperationTimedOut("timed out"), RuntimeError("bug")],
                         ids=["read", "cassandra unavailable", "unexpected error"])
def test_fast_path_answers_as_the_route(url, fail):
    answers, reads = [], []
    for fast in (True, False):
        store = _Store(fail)
        answers.append(answer(client(fast, store).get(url)))
        reads.append(store.reads)
    assert answers[0] == answers[1]
    assert reads[0] == reads[1]


@pytest.mark.parametrize("url", PLAIN.values(), ids=PLAIN)
def test_plain_queries_are_served_without_fastapi(url):
    store = _Store()
    response = client(True, store, fastapi=False).get(url)
    assert response.status_code == 200, response.text
    assert [read[1] for read in store.reads] == ["VIEW", "BUY"]


@pytest.mark.parametrize("url", REFUSED.values(), ids=REFUSED)
def test_everything_else_is_left_to_fastapi(url):
    assert client(True, _Store(), fastapi=False).get(url).status_code == 418


@pytest.mark.parametrize("headers", HEADERS.values(), ids=HEADERS)
def test_header_limits_hold_on_the_fast_path(headers):
    url = PLAIN["plain"]
    fast, routed = (answer(client(f, _Store()).get(url, headers=headers)) for f in (True, False))
    assert fast == routed
    assert fast[0] == 431


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong"}, {"authorization": f"Bearer {TOKEN}"}],
                         ids=["no token", "wrong token", "token"])
def test_the_token_holds_on_the_fast_path(headers):
    url = PLAIN["plain"]
    fast, routed = (answer(client(f, _Store(), TOKEN).get(url, headers=headers)) for f in (True, False))
    assert fast == routed
    assert fast[0] == (200 if headers.get("authorization") == f"Bearer {TOKEN}" else 401)


def test_not_connected_yet_is_fastapis_503():
    fast, routed = (answer(client(f, None).get(PLAIN["plain"])) for f in (True, False))
    assert fast == routed
    assert fast[0] == 503


def test_post_goes_to_fastapi():
    url = PLAIN["plain"]
    assert client(True, _Store(), fastapi=False).post(url).status_code == 418


def test_fast_answers_are_counted_under_the_route():
    c, metrics = client(True, _Store(), fastapi=False), client(True, _Store())

    def count() -> float:
        samples = parse_prometheus(metrics.get("/metrics").text)
        return total(samples, "allezon_query_requests_total", endpoint=PROFILE_PATH, status="200") or 0.0

    before = count()
    for _ in range(3):
        assert c.get(PLAIN["plain"]).status_code == 200
    assert count() - before == 3


def test_the_plain_query_is_what_the_route_reads():
    scope = {"type": "http", "method": "GET", "path": "/user_profiles/a b", "root_path": "",
             "query_string": f"limit=7&time_range={TR}".encode()}
    query = plain_profile_query(scope)
    assert query is not None
    assert (query.cookie, query.limit) == ("a b", 7)
    assert (query.time_range.start_ms, query.time_range.end_ms) == (1647950400000, 1647951000000)
    assert plain_profile_query({**scope, "method": "HEAD"}) is None
    assert plain_profile_query({**scope, "path": "/aggregates"}) is None
