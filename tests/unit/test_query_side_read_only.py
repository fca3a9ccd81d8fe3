"""SPEC, failure rules: the query side is read-only and every statement is prepared.

Both stores are prepared against a recording session: every statement the
query API can run is a prepared SELECT, and nothing is executed except bound
prepared statements (no string ever reaches `execute`).
"""

from __future__ import annotations

import re
from types import SimpleNamespace

from query_api.store import AggregateStore, ProfileStore


class RecordingSession:
    def __init__(self) -> None:
        self.prepared: list[SimpleNamespace] = []

    def prepare(self, query: str):
        statement = SimpleNamespace(query_string=query, is_idempotent=False)  # the driver's default
        self.prepared.append(statement)
        return statement

    def execute(self, *args, **kwargs):  # pragma: no cover - must never be called at preparation
        raise AssertionError("execute() called while preparing")

    execute_async = execute


def test_every_query_side_statement_is_a_prepared_select():
    session = RecordingSession()
    ProfileStore.prepare(session)
    AggregateStore.prepare(session)
    assert session.prepared, "no statement prepared"
    for statement in session.prepared:
        query = statement.query_string
        # Idempotent, so the driver may send it to a second host (query_api/cassandra_session.py).
        assert statement.is_idempotent, query
        assert re.match(r"\s*SELECT\b", query, re.IGNORECASE), query
        assert not re.search(r"\b(INSERT|UPDATE|DELETE|TRUNCATE|DROP|ALTER|CREATE|BATCH|GRANT)\b", query,
                             re.IGNORECASE), query


def test_the_query_api_source_has_no_unprepared_execute():
    """Every execute in query_api/ passes a prepared statement attribute, never a string literal or f-string."""
    from pathlib import Path

    source_dir = Path(__file__).resolve().parents[2] / "query_api"
    calls = []
    for path in source_dir.glob("*.py"):
        for line in path.read_text().splitlines():
            if re.search(r"\.execute(_async)?\(", line):
                calls.append((path.name, line.strip()))
                assert not re.search(r"\.execute(_async)?\(\s*[fFrRbB]?[\"']", line), (path.name, line)
    assert calls, "no execute call found: the check would prove nothing"
