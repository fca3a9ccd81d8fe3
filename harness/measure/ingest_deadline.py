"""How long the ingest API takes to answer 503 when Kafka cannot be reached
(the SPEC's 200 ms): POSTs through FastAPI's TestClient to an app whose
broker is a closed port, so every tag waits out the full deadline.

    .venv/bin/python -m harness.measure.ingest_deadline [--posts 15]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import orjson
from fastapi.testclient import TestClient

from ingest_api.app import create_app
from ingest_api.config import IngestSettings

TAG = {"time": "2022-03-22T12:15:00.000Z", "cookie": "c", "country": "PL", "device": "PC", "action": "BUY",
       "origin": "o", "product_info": {"product_id": 1, "brand_id": "b", "category_id": "c", "price": 1}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=15)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the producer logs every refused connection
    settings = IngestSettings(kafka_bootstrap_servers="127.0.0.1:1", kafka_topic="t")
    elapsed: list[float] = []
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        for _ in range(args.posts):
            started = time.perf_counter()
            response = client.post("/user_tags", content=orjson.dumps(TAG))
            elapsed.append((time.perf_counter() - started) * 1000)
            if response.status_code != 503:
                raise SystemExit(f"expected 503, got {response.status_code}")
    print(f"503 in ms over {args.posts} posts: median {statistics.median(elapsed):.1f} "
          f"min {min(elapsed):.1f} max {max(elapsed):.1f}")


if __name__ == "__main__":
    main()
