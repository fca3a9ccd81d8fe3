"""A minimal HTTP/1.1 keep-alive client on asyncio protocols, for the replay tool.

The replay tool sends thousands of small requests per second and measures
their latency; with a general client (aiohttp) most of its CPU went into
building request and response objects, header multidicts, streams and a timer
per request (docs/BENCHMARKS.md, "Load generator CPU per tag"). This one does
only what the tool needs:

- a pool of keep-alive connections per origin (`Origin`), no limit on their
  number (the callers bound their own concurrency), idle ones reused newest
  first and closed after `idle_timeout` (3 s) so the client never reuses a
  connection a server may be closing (uvicorn's default idle limit is 5 s);
- requests as ready bytes (`Origin.request_bytes`, or a pre-encoded head plus
  a body), one `transport.write` each, no pipelining;
- responses with Content-Length, chunked, or delimited by the end of the
  connection; 1xx interim responses skipped; no decompression (no
  Accept-Encoding is sent); `Connection: close` and HTTP/1.0 honoured;
- one deadline per request (`timeout`, connection set-up included): past it,
  `TimeoutError` and the connection is aborted (its answer would come too late
  to reuse it); one timer per origin, at the earliest deadline in flight;
- errors as exceptions named like aiohttp's, so that reports keep their
  reasons: `ClientConnectorError` (cannot connect), `ServerDisconnectedError`
  (the connection ended before the whole response), `ClientOSError` (another
  socket error), `ClientResponseError` (not HTTP), builtin `TimeoutError`.

`Origin.request` returns `(status, body, seconds)`, the seconds measured from
just before the request is written to the socket until the response's last
byte was parsed (in `data_received`, so the time the awaiting task waits for
its turn in the event loop is not counted).
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
from collections import deque
from urllib.parse import urlsplit

from harness.replay.http_connection import (
    INF,
    ClientConnectorError,
    ClientError,
    ClientOSError,
    ClientResponseError,
    Connection,
    ServerDisconnectedError,
    perf,
)

__all__ = ["ClientError", "ClientOSError", "ClientConnectorError", "ServerDisconnectedError",
           "ClientResponseError", "Origin"]


class Origin:
    """Keep-alive connections to one scheme://host:port, and requests over them.

    `base_url` may carry a path prefix: `target()` puts it before request paths.
    """

    def __init__(self, base_url: str, *, idle_timeout: float = 3.0, ssl: ssl_module.SSLContext | None = None):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        default_port = 443 if parts.scheme == "https" else 80
        self.port = parts.port or default_port
        host_text = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = host_text if self.port == default_port else f"{host_text}:{self.port}"
        self.prefix = parts.path.rstrip("/")
        self.idle_timeout = idle_timeout
        self._ssl = (ssl or ssl_module.create_default_context()) if parts.scheme == "https" else None
        self._idle: deque[Connection] = deque()  # oldest first; reuse from the right (newest)
        self._busy: set[Connection] = set()
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop of the connections (first request)
        self._check: asyncio.TimerHandle | None = None  # the deadline timer, at _check_at
        self._check_at = INF
        self.connections_opened = 0

    # --- request bytes ----------------------------------------------------------------------
    def target(self, path_and_query: str) -> str:
        """The request target of an already encoded path (and query), under the base URL's path."""
        return self.prefix + path_and_query

    def head_bytes(self, method: str, path_and_query: str, *, body: bool = True) -> bytes:
        """The request head up to (not including) the Content-Length value: add `b"%d\\r\\n\\r\\n" % len(body) + body`.

        Without `body`, the whole head of a bodiless request.
        """
        head = (f"{method} {self.target(path_and_query)} HTTP/1.1\r\nHost: {self.host_header}\r\n")
        if body:
            return (head + "Content-Type: application/json\r\nContent-Length: ").encode("latin-1")
        return (head + "\r\n").encode("latin-1")

    def request_bytes(self, method: str, path_and_query: str, body: bytes | None = None) -> bytes:
        if body is None:
            return self.head_bytes(method, path_and_query, body=False)
        return self.head_bytes(method, path_and_query) + b"%d\r\n\r\n" % len(body) + body

    # --- requests ------------------------------------------------------------------------------
    async def request(self, data: bytes, timeout: float, *, head: bool = False) -> tuple[int, bytes, float]:
        """Send one request (`data`, the ready bytes); (status, body, seconds from write to last byte).

        `head`: the request is a HEAD (its response has no body whatever its headers say).
        """
        # The loop is kept: asyncio.get_running_loop() costs a getpid() system call on Python 3.11.
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        now = loop.time()
        deadline = now + timeout
        conn = self._take_idle(now)
        if conn is None:
            conn = await self._connect(loop, deadline)
        conn._method_head = head
        waiter = conn.waiter = loop.create_future()
        conn.deadline = deadline
        self._busy.add(conn)
        if deadline < self._check_at:
            self._arm(loop, deadline)
        transport = conn.transport
        assert transport is not None  # connection_made() ran
        conn.written_at = perf()
        transport.write(data)
        try:
            return await waiter
        except asyncio.CancelledError:
            conn.deadline = INF
            conn.abort()  # its answer may still come: the connection cannot be reused
            raise

    # --- deadlines: one timer for all requests, at the earliest deadline in flight --------------
    # (a timer per request cost more than the rest of the request's bookkeeping; the requests
    # of one kind share their timeout, so the earliest deadline moves on rarely)
    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._check is not None:
            self._check.cancel()
        self._check_at = when
        self._check = loop.call_at(when, self._check_deadlines)

    def _check_deadlines(self) -> None:
        loop = self._loop
        assert loop is not None  # armed by a request
        self._check, self._check_at = None, INF
        now = loop.time() + 0.001  # the loop's clock has millisecond steps
        earliest = INF
        for conn in [c for c in self._busy if c.deadline <= now]:
            conn._timed_out()
        for conn in self._busy:
            if conn.deadline < earliest:
                earliest = conn.deadline
        if earliest < INF:
            self._arm(loop, earliest)

    def _take_idle(self, now: float) -> Connection | None:
        idle = self._idle
        limit = now - self.idle_timeout
        while idle and idle[0].idle_since <= limit:  # too long idle: a server may be closing it
            idle.popleft().abort()
        while idle:
            conn = idle.pop()
            if not conn.closed and conn.transport is not None and not conn.transport.is_closing():
                return conn
        return None

    async def _connect(self, loop: asyncio.AbstractEventLoop, deadline: float) -> Connection:
        if self._closed:
            raise ClientConnectorError(0, "client closed")
        try:
            async with asyncio.timeout_at(deadline):
                _, conn = await loop.create_connection(
                    lambda: Connection(self), self.host, self.port, ssl=self._ssl,
                    server_hostname=self.host if self._ssl is not None else None)
        except TimeoutError:
            raise
        except OSError as exc:
            raise ClientConnectorError(
                exc.errno or 0, f"Cannot connect to host {self.host}:{self.port} ssl:"
                f"{'default' if self._ssl is not None else 'False'} [{exc.strerror or exc}]") from exc
        self.connections_opened += 1
        return conn

    def _release(self, conn: Connection) -> None:
        self._busy.discard(conn)
        if self._closed:
            conn.abort()
            return
        assert self._loop is not None  # the connection served a request
        conn.idle_since = self._loop.time()
        self._idle.append(conn)

    def _forget(self, conn: Connection) -> None:
        self._busy.discard(conn)
        # An idle one that the server closed is skipped (closed) when taken, or dropped when old.

    @property
    def idle_connections(self) -> int:
        return sum(not c.closed for c in self._idle)

    async def close(self) -> None:
        """Close every connection (requests in flight fail with ServerDisconnectedError)."""
        self._closed = True
        if self._check is not None:
            self._check.cancel()
            self._check, self._check_at = None, INF
        conns = [*self._idle, *self._busy]
        self._idle.clear()
        for conn in conns:
            if conn.transport is not None and not conn.closed:
                conn.transport.close()
        for conn in conns:
            if conn.waiter is not None and not conn.waiter.done():
                conn._fail(ServerDisconnectedError("client closed"))
        if conns:
            await asyncio.sleep(0)  # let the transports run connection_lost
