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
import time
from collections import deque
from urllib.parse import urlsplit

__all__ = ["ClientError", "ClientOSError", "ClientConnectorError", "ServerDisconnectedError",
           "ClientResponseError", "Origin"]

_perf = time.perf_counter
_MAX_HEAD = 65_536  # bytes of status line + headers at most
_HEAD = -1  # parser states (Connection._need): reading the status line and headers
_UNTIL_CLOSE = -2  # a body delimited by the end of the connection
_CHUNKED = -3
_INF = float("inf")


class ClientError(Exception):
    """Base of the client's errors."""


class ClientOSError(ClientError, OSError):
    """A socket error while sending or receiving."""


class ClientConnectorError(ClientOSError):
    """The connection could not be opened."""


class ServerDisconnectedError(ClientError):
    """The connection ended before the whole response arrived."""

    def __init__(self, message: str = "Server disconnected"):
        super().__init__(message)


class ClientResponseError(ClientError):
    """The server's answer is not a well-formed HTTP/1.x response."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one request in flight."""

    __slots__ = ("origin", "transport", "waiter", "deadline", "closed", "reusable", "idle_since", "written_at",
                 "_head", "_need", "_status", "_chunks", "_got", "_raw", "_method_head")

    def __init__(self, origin: Origin):
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future | None = None
        self.deadline = _INF  # loop time the request in flight times out at
        self.closed = False
        self.reusable = True
        self.idle_since = 0.0
        self.written_at = 0.0
        self._reset()

    def _reset(self) -> None:
        self._head = b""  # bytes of the response head received so far
        self._need = _HEAD
        self._status = 0
        self._chunks: list[bytes] = []
        self._got = 0
        self._raw = bytearray()  # chunked: undecoded bytes
        self._method_head = False

    # --- asyncio.Protocol ------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            # Nothing asked (or the asker gave up): the stream is out of step, drop the connection.
            self.abort()
            return
        try:
            self._feed(data)
        except ClientResponseError as exc:
            self._fail(exc)
            self.abort()

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.origin._forget(self)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            if self._need == _UNTIL_CLOSE and exc is None:
                self._complete(b"".join(self._chunks))
            elif exc is not None:
                self._fail(ClientOSError(getattr(exc, "errno", None) or 0, str(exc)))
            else:
                self._fail(ServerDisconnectedError())

    # --- the response parser -----------------------------------------------------------
    def _feed(self, data: bytes) -> None:
        while data:
            need = self._need
            if need == _HEAD:
                if self._head:
                    data = self._head + data
                end = data.find(b"\r\n\r\n")
                if end < 0:
                    if len(data) > _MAX_HEAD:
                        raise ClientResponseError("response head too long")
                    self._head = data
                    return
                self._head = b""
                final = self._parse_head(data[:end])
                data = data[end + 4:]
                if not final:  # a 1xx interim response: the real one follows
                    continue
                if self._need == 0:
                    self._complete(b"")
                    if data:  # bytes after a complete response: we never pipeline
                        raise ClientResponseError("data after the response")
                    return
            elif need > 0:
                if not self._chunks and len(data) >= need:  # the whole body in one piece (the usual case)
                    body, data = data[:need], data[need:]
                    self._complete(body)
                    if data:
                        raise ClientResponseError("data after the response")
                    return
                take = data[: need - self._got] if len(data) > need - self._got else data
                self._chunks.append(take)
                self._got += len(take)
                data = data[len(take):]
                if self._got == need:
                    self._complete(b"".join(self._chunks))
                    if data:
                        raise ClientResponseError("data after the response")
                    return
            elif need == _UNTIL_CLOSE:
                self._chunks.append(data)
                return
            else:  # chunked
                self._raw += data
                self._decode_chunks()
                return

    def _parse_head(self, head: bytes) -> bool:
        """Status and framing of a response head; False for a 1xx (skipped, read the next head)."""
        lines = head.split(b"\r\n")
        status_line = lines[0]
        if not status_line.startswith(b"HTTP/1.") or len(status_line) < 12 or status_line[12:13] not in (b"", b" "):
            raise ClientResponseError(f"bad status line {status_line[:80]!r}")
        try:
            status = int(status_line[9:12])
        except ValueError:
            raise ClientResponseError(f"bad status line {status_line[:80]!r}") from None
        http10 = status_line[7:8] == b"0"
        length = None
        chunked = False
        connection = b""
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise ClientResponseError(f"bad header line {line[:80]!r}")
            name = name.strip().lower()
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise ClientResponseError(f"bad Content-Length {value[:40]!r}") from None
                if length < 0:
                    raise ClientResponseError(f"bad Content-Length {value[:40]!r}")
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                connection = value.strip().lower()
        if 100 <= status < 200:
            return False
        self._status = status
        if b"close" in connection or (http10 and b"keep-alive" not in connection):
            self.reusable = False
        if status in (204, 304) or self._method_head:
            self._need = 0
        elif chunked:
            self._need = _CHUNKED
        elif length is not None:
            self._need = length
        else:
            self._need = _UNTIL_CLOSE
            self.reusable = False
        return True

    def _decode_chunks(self) -> None:
        raw = self._raw
        while True:
            line_end = raw.find(b"\r\n")
            if line_end < 0:
                if len(raw) > 4096:
                    raise ClientResponseError("chunk size line too long")
                return
            size_text = bytes(raw[:line_end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ClientResponseError(f"bad chunk size {size_text[:40]!r}") from None
            if size == 0:
                # Trailers (if any), then an empty line.
                after = line_end + 2
                if raw[after:after + 2] == b"\r\n":
                    end = after + 2
                else:
                    found = raw.find(b"\r\n\r\n", after)
                    if found < 0:
                        if len(raw) > _MAX_HEAD:
                            raise ClientResponseError("trailers too long")
                        return
                    end = found + 4
                if end != len(raw):
                    raise ClientResponseError("data after the response")
                self._complete(b"".join(self._chunks))
                return
            if len(raw) < line_end + 2 + size + 2:
                return
            start = line_end + 2
            if raw[start + size:start + size + 2] != b"\r\n":
                raise ClientResponseError("chunk not followed by CRLF")
            self._chunks.append(bytes(raw[start:start + size]))
            del raw[:start + size + 2]

    def _complete(self, body: bytes) -> None:
        done = _perf()
        waiter, status = self.waiter, self._status
        self.deadline = _INF
        self.waiter = None
        self._reset()
        if self.reusable and not self.closed:
            self.origin._release(self)
        else:
            self.abort()
        if not waiter.done():
            waiter.set_result((status, body, done - self.written_at))

    def _fail(self, exc: BaseException) -> None:
        self.deadline = _INF
        waiter, self.waiter = self.waiter, None
        self.reusable = False
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _timed_out(self) -> None:
        self._fail(TimeoutError())
        self.abort()

    def abort(self) -> None:
        self.reusable = False
        if not self.closed:
            self.closed = True
            self.origin._forget(self)
            if self.transport is not None:
                self.transport.abort()


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
        self._idle: deque[_Connection] = deque()  # oldest first; reuse from the right (newest)
        self._busy: set[_Connection] = set()
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop of the connections (first request)
        self._check: asyncio.TimerHandle | None = None  # the deadline timer, at _check_at
        self._check_at = _INF
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
        conn.written_at = _perf()
        conn.transport.write(data)
        try:
            return await waiter
        except asyncio.CancelledError:
            conn.deadline = _INF
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
        self._check, self._check_at = None, _INF
        now = self._loop.time() + 0.001  # the loop's clock has millisecond steps
        earliest = _INF
        for conn in [c for c in self._busy if c.deadline <= now]:
            conn._timed_out()
        for conn in self._busy:
            if conn.deadline < earliest:
                earliest = conn.deadline
        if earliest < _INF:
            self._arm(self._loop, earliest)

    def _take_idle(self, now: float) -> _Connection | None:
        idle = self._idle
        limit = now - self.idle_timeout
        while idle and idle[0].idle_since <= limit:  # too long idle: a server may be closing it
            idle.popleft().abort()
        while idle:
            conn = idle.pop()
            if not conn.closed and not conn.transport.is_closing():
                return conn
        return None

    async def _connect(self, loop: asyncio.AbstractEventLoop, deadline: float) -> _Connection:
        if self._closed:
            raise ClientConnectorError(0, "client closed")
        try:
            async with asyncio.timeout_at(deadline):
                _, conn = await loop.create_connection(
                    lambda: _Connection(self), self.host, self.port, ssl=self._ssl,
                    server_hostname=self.host if self._ssl is not None else None)
        except TimeoutError:
            raise
        except OSError as exc:
            raise ClientConnectorError(
                exc.errno or 0, f"Cannot connect to host {self.host}:{self.port} ssl:"
                f"{'default' if self._ssl is not None else 'False'} [{exc.strerror or exc}]") from exc
        self.connections_opened += 1
        return conn

    def _release(self, conn: _Connection) -> None:
        self._busy.discard(conn)
        if self._closed:
            conn.abort()
            return
        conn.idle_since = self._loop.time()
        self._idle.append(conn)

    def _forget(self, conn: _Connection) -> None:
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
            self._check, self._check_at = None, _INF
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
