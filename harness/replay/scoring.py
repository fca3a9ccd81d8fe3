"""Scoring: a query goes out with its expected answer as the body (the query
API's debug mode), and the answer is exact when it is a 200 with the same
JSON. A profile answer that differs is checked again against the oracle: if
the expected answer has meanwhile become undetermined (newer tags of the
cookie arrived, so an old one may be dropped), it counts as indeterminate,
not wrong.

`check_until_exact` is the final checks' rule: each query is asked again
until exact or until its SPEC deadline, and only then is a difference wrong.
"""

from __future__ import annotations

import asyncio

import orjson

from harness.replay.ledger import Ledger
from harness.replay.oracle import Oracle
from harness.replay.queries import Query
from harness.replay.report import WrongAnswer
from harness.replay.stats import Samples
from harness.replay.transport import Transport


def same_json(a: bytes, b: bytes) -> bool:
    try:
        return bool(orjson.loads(a) == orjson.loads(b))
    except orjson.JSONDecodeError:
        return False


def clip(body: bytes, limit: int = 600) -> str:
    text = body.decode(errors="replace")
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


class Scorer:
    def __init__(self, transport: Transport, oracle: Oracle, ledger: Ledger, examples: int):
        self.transport = transport
        self.oracle = oracle
        self.ledger = ledger
        self.examples = examples  # wrong answers kept per phase

    async def ask(self, query: Query, *, score: bool = True) -> bool | None:
        """Send one query with its expected answer; True/False = exact or not, None = not judged.
        Without `score` the answer is judged but not counted."""
        phase = query.phase
        status, body = await self.transport.request(
            query.endpoint, self.transport.query_request("POST", query.url, query.expected), phase)
        correct = status == 200 and (body == query.expected or same_json(body, query.expected))
        asked = query.profile
        if not correct and asked is not None:
            if not self.oracle.profile_still_exact(asked.cookie, asked.refs, asked.start, asked.limit,
                                                   self.ledger.inflight.get(asked.cookie, 0)):
                phase.indeterminate += 1
                return None
        if not score:
            return correct
        if correct:
            phase.correct[query.endpoint] += 1
        else:
            phase.wrong[query.endpoint] += 1
            if len(phase.examples) < self.examples:
                phase.examples.append(WrongAnswer(url=query.url, status=status, expected=clip(query.expected),
                                                  got=clip(body)))
        return correct

    async def check_until_exact(self, queries: list[tuple[Query, float]], *, concurrency: int,
                                poll_s: float) -> tuple[dict[str, int], Samples]:
        """Ask each (query, deadline) until exact or past its deadline (loop time), `concurrency` at
        a time; the queries exact at the first try per endpoint, and the seconds until exact."""
        loop = asyncio.get_running_loop()
        semaphore = asyncio.Semaphore(concurrency)
        first_try = {"user_profiles": 0, "aggregates": 0}
        waited = Samples()

        async def check(query: Query, deadline: float) -> None:
            async with semaphore:
                began = loop.time()
                attempt = 0
                while True:
                    attempt += 1
                    last = loop.time() >= deadline
                    result = await self.ask(query, score=last)
                    if result is None:  # indeterminate: not scored
                        return
                    if result:
                        if not last:
                            query.phase.correct[query.endpoint] += 1
                        if attempt == 1:
                            first_try[query.endpoint] += 1
                        waited.add(loop.time() - began)
                        return
                    if last:
                        return
                    await asyncio.sleep(min(poll_s, max(0.0, deadline - loop.time())))

        await asyncio.gather(*(check(q, d) for q, d in queries))
        return first_try, waited
