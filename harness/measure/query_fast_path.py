"""CPU per GET /user_profiles in the query API's own process, through its fast
path (query_api/fast_path.py) and through FastAPI's route: the app called as
an ASGI callable, its profile store stubbed (20 tags per action, no
Cassandra, no sockets), so what differs is the layers around the reads.
Rounds alternate between the two.

    .venv/bin/python -m harness.measure.query_fast_path [--requests 3000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from fastapi import FastAPI
from starlette.types import Message

from query_api.app import create_app
from query_api.config import QuerySettings

TAG = ('{"time":"2022-03-22T12:05:00.000Z","cookie":"c","country":"PL","device":"PC","action":"VIEW",'
       '"origin":"o","product_info":{"product_id":1,"brand_id":"b","category_id":"c","price":1}}')
SCOPE = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
    "path": "/user_profiles/cookie-123", "raw_path": b"/user_profiles/cookie-123", "root_path": "",
    "query_string": b"time_range=2022-03-22T12:00:00.000_2022-03-22T12:10:00.000&limit=20",
    "headers": [(b"host", b"query"), (b"user-agent", b"measure"), (b"accept", b"*/*")],
    "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8082),
}


class _Store:
    async def tags(self, cookie: str, action: str, start_ms: int, end_ms: int, limit: int) -> list[str]:
        return [TAG] * min(limit, 20)


class _Reader:
    profiles = _Store()


def app(fast: bool) -> FastAPI:
    made = create_app(QuerySettings())
    made.state.reader = _Reader()
    if not fast:
        made.fast_path = None  # type: ignore[attr-defined]  # QueryApp's: every request through FastAPI
    return made


async def cpu_us_per_request(target: FastAPI, requests: int) -> float:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    started = time.process_time()
    for _ in range(requests):
        await target(dict(SCOPE), receive, send)
    elapsed = time.process_time() - started
    if sent[0].get("status") != 200:
        raise SystemExit(f"expected 200, got {sent[0]}")
    return elapsed / requests * 1e6


async def measure(requests: int, rounds: int) -> None:
    arms = {"fast path": app(True), "FastAPI route": app(False)}
    for target in arms.values():
        await cpu_us_per_request(target, requests // 5)  # warm-up
    figures: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(rounds):
        for name, target in arms.items():
            figures[name].append(await cpu_us_per_request(target, requests))
    for name, values in figures.items():
        print(f"{name}: median {statistics.median(values):.1f} us of CPU per request "
              f"(rounds: {', '.join(f'{v:.0f}' for v in values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(measure(args.requests, args.rounds))


if __name__ == "__main__":
    main()
