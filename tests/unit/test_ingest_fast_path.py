"""POST /user_tags's fast path (ingest_api/fast_path.py) answers exactly as the
FastAPI route it bypasses: every case is sent to both and the answers compared.
In process, with the Kafka writer stubbed (no lifespan, no Kafka)."""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient

from ingest_api.app import create_app
from ingest_api.config import IngestSettings
from ingest_api.kafka_writer import LogUnavailable

TOKEN = "s3cret-token-of-32-characters-xx"
VALID = {
    "time": "2022-03-22T12:15:00.000Z", "cookie": "c/1", "country": "PL", "device": "PC", "action": "BUY",
    "origin": "shop", "product_info": {"product_id": 17, "brand_id": "Nike", "category_id": "shoes", "price": 1999},
}


class _Writer:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.written: list[tuple[bytes, bytes, str]] = []

    async def write(self, key: bytes, value: bytes, cookie: str) -> None:
        if self.fail:
            raise LogUnavailable("acknowledgement deadline passed")
        self.written.append((key, value, cookie))


def client(fast: bool, fail: bool = False, **settings) -> TestClient:
    app = create_app(IngestSettings(**settings))
    app.state.writer = _Writer(fail)
    if not fast:
        app.fast_path = None  # the FastAPI route
    return TestClient(app, raise_server_exceptions=False)


def answer(response) -> tuple:
    headers = {k: v for k, v in response.headers.items() if k not in ("date", "server")}
    return response.status_code, headers, response.content


def chunks(data: bytes, size: int):
    for i in range(0, len(data), size):
        yield data[i:i + size]


CASES = {
    "valid": dict(content=orjson.dumps(VALID)),
    "valid, chunked": dict(content=lambda: chunks(orjson.dumps(VALID), 7)),
    "not json": dict(content=b"{nope"),
    "not an object": dict(content=b"[1]"),
    "bad fields": dict(content=orjson.dumps({**VALID, "device": "FRIDGE", "time": 5})),
    "empty": dict(content=b""),
    "too large": dict(content=b" " * (64 * 1024 + 1)),
    "too large, chunked": dict(content=lambda: chunks(b" " * (64 * 1024 + 1), 10_000)),
    "too many headers": dict(content=orjson.dumps(VALID), headers={f"x-h{i}": "v" for i in range(120)}),
    "headers too large": dict(content=orjson.dumps(VALID), headers={"x-large": "v" * (17 * 1024)}),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("fail", [False, True], ids=["acknowledged", "not acknowledged"])
def test_fast_path_answers_as_the_route(case, fail):
    answers, written = [], []
    for fast in (True, False):
        c = client(fast, fail)
        kwargs = dict(CASES[case])
        if callable(kwargs["content"]):
            kwargs["content"] = kwargs["content"]()
        answers.append(answer(c.post("/user_tags", **kwargs)))
        written.append(c.app.state.writer.written)
    assert answers[0] == answers[1]
    assert written[0] == written[1]
    status = answers[0][0]
    if case.startswith("valid"):
        assert status == (503 if fail else 204)
        if fail:
            assert answers[0][1]["retry-after"] == "1"
        else:
            assert answers[0][2] == b"" and written[0][0][2] == "c/1"
    else:
        assert status in (400, 413, 431) and not written[0]


@pytest.mark.parametrize("authorization", [None, f"Bearer {TOKEN}x", f"Bearer {TOKEN}"])
def test_fast_path_checks_the_token_as_the_route(authorization):
    headers = {"authorization": authorization} if authorization else {}
    answers = [answer(client(fast, ingest_auth_token=TOKEN).post("/user_tags", content=orjson.dumps(VALID),
                                                                  headers=headers))
               for fast in (True, False)]
    assert answers[0] == answers[1]
    assert answers[0][0] == (204 if authorization == f"Bearer {TOKEN}" else 401)


def test_other_methods_stay_with_fastapi():
    c = client(True)
    for response in (c.get("/user_tags"), c.put("/user_tags", content=b"{}")):
        assert response.status_code == 405
        assert response.headers["content-type"] == "application/problem+json"
