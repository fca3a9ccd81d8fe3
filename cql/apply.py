"""Applies cql/*.cql (the files beside this module) to a Cassandra cluster.

Files run in sorted filename order. A statement ends with a line whose last
non-blank character is `;`; lines that start with `--` (after indentation) are
comments and skipped (a `--` after code on the same line is NOT treated as a
comment). Three placeholders are substituted by plain text replacement (no
str.format, the CQL map literals use braces): `{keyspace}`,
`{replication_factor}` and `{gc_grace_seconds}` (`gc_grace_seconds`). Statements are expected to say IF NOT EXISTS, so
applying the schema again is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import RoundRobinPolicy

from common.settings import KEYSPACE_RE

log = logging.getLogger(__name__)

CQL_DIR = Path(__file__).resolve().parent


def validate_keyspace(keyspace: str) -> str:
    if not isinstance(keyspace, str) or not KEYSPACE_RE.fullmatch(keyspace):
        raise ValueError(f"invalid keyspace name {keyspace!r}: must match [a-z][a-z0-9_]{{0,47}}")
    return keyspace


def connect(
    hosts: Sequence[str] | str = ("127.0.0.1",),
    port: int = 9042,
    keyspace: str | None = None,
    timeout: float = 10.0,
) -> tuple[Cluster, Session]:
    """A driver Cluster and Session (caller shuts the cluster down)."""
    if isinstance(hosts, str):
        hosts = [h.strip() for h in hosts.split(",") if h.strip()]
    profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), request_timeout=timeout)
    cluster = Cluster(
        contact_points=list(hosts),
        port=port,
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=timeout,
        control_connection_timeout=timeout,
    )
    try:
        session = cluster.connect(keyspace)
    except Exception:
        cluster.shutdown()
        raise
    return cluster, session


@contextmanager
def session_for(
    hosts: Sequence[str] | str = ("127.0.0.1",), port: int = 9042, keyspace: str | None = None
) -> Iterator[Session]:
    cluster, session = connect(hosts, port, keyspace)
    try:
        yield session
    finally:
        cluster.shutdown()


def split_statements(text: str) -> list[str]:
    """CQL statements of one file (see the module docstring for the rules)."""
    statements: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.strip().startswith("--") or not line.strip():
            continue
        current.append(line.rstrip())
        if line.rstrip().endswith(";"):
            statement = "\n".join(current).strip()
            statements.append(statement[:-1].rstrip())
            current = []
    if current:
        raise ValueError(f"statement without a closing ';': {' '.join(current)[:120]!r}")
    return statements


def render(text: str, keyspace: str, replication_factor: int) -> str:
    validate_keyspace(keyspace)
    if not isinstance(replication_factor, int) or not 1 <= replication_factor <= 10:
        raise ValueError(f"invalid replication factor {replication_factor!r}")
    return (text.replace("{keyspace}", keyspace).replace("{replication_factor}", str(replication_factor))
            .replace("{gc_grace_seconds}", str(gc_grace_seconds(replication_factor))))


def gc_grace_seconds(replication_factor: int) -> int:
    """How long a tombstone outlives its delete: with one replica no other copy can miss the
    delete, so 0; with more, Cassandra's hint window (3 h), within which a node that was down
    gets the deletes it missed replayed (a node down longer must be repaired)."""
    return 0 if replication_factor == 1 else 3 * 3600


def statements(keyspace: str, replication_factor: int, cql_dir: Path | None = None) -> list[tuple[str, str]]:
    """(file name, statement) pairs in the order they are applied."""
    cql_dir = cql_dir or CQL_DIR
    files = sorted(cql_dir.glob("*.cql"))
    if not files:
        raise FileNotFoundError(f"no *.cql files in {cql_dir}")
    return [
        (path.name, stmt)
        for path in files
        for stmt in split_statements(render(path.read_text(), keyspace, replication_factor))
    ]


def _with_session(target: Session | Sequence[str] | str, port: int) -> AbstractContextManager[Session]:
    if isinstance(target, Session):
        @contextmanager
        def borrowed() -> Iterator[Session]:
            yield target

        return borrowed()
    return session_for(target, port)


def apply_schema(
    target: Session | Sequence[str] | str,
    keyspace: str,
    replication_factor: int,
    *,
    port: int = 9042,
    cql_dir: Path | None = None,
    timeout: float = 60.0,
) -> int:
    """Apply every cql/*.cql file to `target` (a Session, or contact points + port).

    Returns the number of statements executed. The driver waits for schema
    agreement after each DDL statement.
    """
    todo = statements(keyspace, replication_factor, cql_dir)
    with _with_session(target, port) as session:
        for name, stmt in todo:
            log.debug("schema %s: %s", name, stmt.splitlines()[0])
            session.execute(stmt, timeout=timeout)
    log.info("schema applied to keyspace %s (rf %d): %d statements", keyspace, replication_factor, len(todo))
    return len(todo)


def drop_keyspace(
    target: Session | Sequence[str] | str, keyspace: str, *, port: int = 9042, timeout: float = 60.0
) -> None:
    """DROP KEYSPACE IF EXISTS (tests use one fresh keyspace each)."""
    validate_keyspace(keyspace)
    with _with_session(target, port) as session:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=timeout)
    log.info("keyspace %s dropped", keyspace)
