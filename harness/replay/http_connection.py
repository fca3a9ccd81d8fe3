"""One keep-alive HTTP/1.1 connection of the replay tool's client
(harness/replay/http.py): an asyncio protocol that writes a ready request and
parses its response (Content-Length, chunked, or until the connection ends;
1xx interim responses skipped), and the client's errors, named like aiohttp's
so that reports keep their reasons.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.replay.http import Origin

perf = time.perf_counter
_MAX_HEAD = 65_536  # bytes of status line + headers at most
_HEAD = -1  # parser states (Connection._need): reading the status line and headers
_UNTIL_CLOSE = -2  # a body delimited by the end of the connection
_CHUNKED = -3
INF = float("inf")


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


class Connection(asyncio.Protocol):
    """One keep-alive connection; at most one request in flight."""

    __slots__ = ("origin", "transport", "waiter", "deadline", "closed", "reusable", "idle_since", "written_at",
                 "_head", "_need", "_status", "_chunks", "_got", "_raw", "_method_head")

    def __init__(self, origin: Origin):
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future | None = None
        self.deadline = INF  # loop time the request in flight times out at
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
        done = perf()
        waiter, status = self.waiter, self._status
        self.deadline = INF
        self.waiter = None
        self._reset()
        if self.reusable and not self.closed:
            self.origin._release(self)
        else:
            self.abort()
        if waiter is not None and not waiter.done():
            waiter.set_result((status, body, done - self.written_at))

    def _fail(self, exc: BaseException) -> None:
        self.deadline = INF
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
