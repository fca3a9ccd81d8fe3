"""The replay tool's HTTP/1.1 client (harness/replay/http.py) against a tiny asyncio
server in the test process whose every answer is scripted: framing
(Content-Length, chunked, until close, 1xx), keep-alive reuse, the server
closing, timeouts, cancellation, bad responses; and the runner's error
accounting over it (a tag is never sent twice, a query once more)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from harness.replay.http import (
    ClientConnectorError,
    ClientOSError,
    ClientResponseError,
    Origin,
    ServerDisconnectedError,
)
from harness.replay.phase import Phase
from harness.replay.runner import Runner, RunnerConfig
from harness.replay.workload import Workload


class Request:
    def __init__(self, conn: int, line: bytes, headers: dict[bytes, bytes], body: bytes):
        self.conn = conn
        self.method, self.target, _ = line.split(b" ", 2)
        self.headers = headers
        self.body = body


Handler = Callable[[Request, asyncio.StreamWriter], Awaitable[bool]]


class TinyServer:
    """Reads HTTP/1.1 requests (Content-Length bodies) and lets `handler` write
    whatever it likes; the handler returns False to close the connection."""

    def __init__(self, handler: Handler):
        self.handler = handler
        self.connections = 0
        self.requests: list[Request] = []
        self.received = asyncio.Queue()  # every request, as it arrives
        self.client_closed = asyncio.Queue()  # connection numbers whose client side ended
        self.server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> TinyServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = self.connections
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    self.client_closed.put_nowait(conn)
                    return
                line, *header_lines = head[:-4].split(b"\r\n")
                headers = {}
                for h in header_lines:
                    name, _, value = h.partition(b":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
                request = Request(conn, line, headers, body)
                self.requests.append(request)
                self.received.put_nowait(request)
                if not await self.handler(request, writer):
                    writer.close()
                    return
        finally:
            writer.close()


def answer(data: bytes) -> Handler:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> bool:
        writer.write(data)
        await writer.drain()
        return True
    return handler


NO_CONTENT = b"HTTP/1.1 204 No Content\r\nServer: tiny\r\n\r\n"


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s" % (
        len(body), extra, body)


def run(coro):
    return asyncio.run(coro)


def test_requests_and_responses_over_one_kept_alive_connection():
    async def handler(request, writer):
        if request.target == b"/user_tags":
            writer.write(NO_CONTENT)
        else:
            writer.write(ok(b'{"echo":' + request.body + b"}", b"X-Mixed-Case: 1\r\n"))
        await writer.drain()
        return True

    async def go():
        async with TinyServer(handler) as server:
            origin = Origin(server.url)
            tag = b'{"cookie":"c"}'
            head = origin.head_bytes("POST", "/user_tags")
            first = await origin.request(head + b"%d\r\n\r\n" % len(tag) + tag, 5.0)
            second = await origin.request(origin.request_bytes("POST", "/q?x=%2F", b"[1]"), 5.0)
            third = await origin.request(origin.request_bytes("GET", "/q"), 5.0)
            await origin.close()
            return server, origin, first, second, third

    server, origin, first, second, third = run(go())
    assert first[:2] == (204, b"") and first[2] > 0
    assert second[:2] == (200, b'{"echo":[1]}')
    assert third[:2] == (200, b'{"echo":}')
    assert server.connections == 1 and origin.connections_opened == 1
    tag_request, query, get = server.requests
    assert tag_request.body == b'{"cookie":"c"}' and tag_request.headers[b"content-type"] == b"application/json"
    assert tag_request.headers[b"host"] == server.url.removeprefix("http://").encode()
    assert query.target == b"/q?x=%2F" and get.method == b"GET" and b"content-length" not in get.headers


def test_responses_cut_into_single_bytes_chunked_and_interim():
    responses = [
        b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"after-100"),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n1\r\nx\r\n0\r\nTrailer: t\r\n\r\n",
        ok(b"x" * 5000),
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\ncontent-length: 4\r\n\r\nbusy",
    ]

    async def handler(request, writer):
        for i in range(len(data := responses[len(server.requests) - 1])):
            writer.write(data[i:i + 1])
            await writer.drain()
        return True

    async def go():
        nonlocal server
        async with TinyServer(handler) as server:
            origin = Origin(server.url)
            got = [(await origin.request(origin.request_bytes("GET", "/"), 5.0))[:2] for _ in responses]
            await origin.close()
            return got

    server = None
    got = run(go())
    assert got == [(200, b"after-100"), (200, b"abcdefg"), (200, b"x"), (200, b"x" * 5000), (503, b"busy")]
    assert server.connections == 1


def test_connection_close_and_until_close_responses_are_not_reused():
    responses = [ok(b"one", b"Connection: close\r\n"),
                 b"HTTP/1.0 200 OK\r\n\r\nread until the end",
                 ok(b"three")]

    async def handler(request, writer):
        writer.write(responses[len(server.requests) - 1])
        await writer.drain()
        return len(server.requests) == 3  # the server closes after the first two

    async def go():
        nonlocal server
        async with TinyServer(handler) as server:
            origin = Origin(server.url)
            got = [(await origin.request(origin.request_bytes("GET", "/"), 5.0))[:2] for _ in responses]
            await origin.close()
            return got

    server = None
    assert run(go()) == [(200, b"one"), (200, b"read until the end"), (200, b"three")]
    assert server.connections == 3


def test_server_closing_without_an_answer_is_a_disconnect_and_the_next_request_reconnects():
    async def handler(request, writer):
        if request.body == b"drop":
            return False  # close without answering
        writer.write(NO_CONTENT)
        await writer.drain()
        return True

    async def go():
        async with TinyServer(handler) as server:
            origin = Origin(server.url)
            assert (await origin.request(origin.request_bytes("POST", "/", b"fine"), 5.0))[0] == 204
            with pytest.raises(ServerDisconnectedError):
                await origin.request(origin.request_bytes("POST", "/", b"drop"), 5.0)
            assert (await origin.request(origin.request_bytes("POST", "/", b"fine"), 5.0))[0] == 204
            await origin.close()
            return server.connections

    assert run(go()) == 2


def test_a_timeout_aborts_the_connection_and_the_next_request_gets_a_new_one():
    async def handler(request, writer):
        if request.body == b"hang":
            return True  # never answers: the client gives up
        writer.write(NO_CONTENT)
        await writer.drain()
        return True

    async def go():
        async with TinyServer(handler) as server:
            origin = Origin(server.url)
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(TimeoutError):
                await origin.request(origin.request_bytes("POST", "/", b"hang"), 0.2)
            waited = loop.time() - started
            assert await server.client_closed.get() == 1  # the client closed the timed-out connection
            status, _, _ = await origin.request(origin.request_bytes("POST", "/", b"fine"), 5.0)
            await origin.close()
            return waited, status, server.connections

    waited, status, connections = run(go())
    assert 0.19 <= waited < 2.0 and status == 204 and connections == 2


def test_a_short_deadline_is_kept_while_a_longer_one_is_in_flight():
    async def handler(request, writer):
        if request.body == b"hang":
            return True  # never answers
        writer.write(NO_CONTENT)
        await writer.drain()
        return True

    async def go():
        async with TinyServer(handler) as server:
            origin = Origin(server.url)
            loop = asyncio.get_running_loop()
            slow = asyncio.create_task(origin.request(origin.request_bytes("POST", "/", b"hang"), 60.0))
            await server.received.get()
            fine = await origin.request(origin.request_bytes("POST", "/", b"fine"), 0.5)  # answered: no timeout
            started = loop.time()
            with pytest.raises(TimeoutError):
                await origin.request(origin.request_bytes("POST", "/", b"hang"), 0.2)
            waited = loop.time() - started
            assert not slow.done()  # the 60 s request is still waiting
            slow.cancel()
            await asyncio.gather(slow, return_exceptions=True)
            await origin.close()
            return fine[0], waited

    status, waited = run(go())
    assert status == 204 and 0.19 <= waited < 2.0


def test_a_cancelled_request_closes_its_connection():
    async def handler(request, writer):
        return True  # never answers

    async def go():
        async with TinyServer(handler) as server:
            origin = Origin(server.url)
            task = asyncio.create_task(origin.request(origin.request_bytes("GET", "/"), 30.0))
            await server.received.get()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await server.client_closed.get() == 1
            await origin.close()

    run(go())


def test_idle_connections_are_not_reused_past_the_idle_timeout():
    async def go():
        async with TinyServer(answer(NO_CONTENT)) as server:
            origin = Origin(server.url, idle_timeout=0.0)  # every idle connection is too old at once
            for _ in range(3):
                assert (await origin.request(origin.request_bytes("GET", "/"), 5.0))[0] == 204
            closed = {await server.client_closed.get(), await server.client_closed.get()}
            await origin.close()
            return server.connections, closed

    assert run(go()) == (3, {1, 2})


def test_concurrent_requests_open_connections_and_keep_them():
    async def handler(request, writer):
        await release.wait()
        writer.write(NO_CONTENT)
        await writer.drain()
        return True

    async def go():
        nonlocal release
        release = asyncio.Event()
        async with TinyServer(handler) as server:
            origin = Origin(server.url)
            tasks = [asyncio.create_task(origin.request(origin.request_bytes("GET", "/"), 5.0)) for _ in range(5)]
            for _ in range(5):
                await server.received.get()
            release.set()
            first = [r[0] for r in await asyncio.gather(*tasks)]
            again = [r[0] for r in await asyncio.gather(
                *(origin.request(origin.request_bytes("GET", "/"), 5.0) for _ in range(5)))]
            idle = origin.idle_connections
            await origin.close()
            return first, again, server.connections, idle

    release = None
    first, again, connections, idle = run(go())
    assert first == again == [204] * 5 and connections == 5 and idle == 5


def test_refused_connections_and_bad_responses_raise():
    async def go():
        async with TinyServer(answer(b"SMTP ready\r\n\r\n")) as server:
            origin = Origin(server.url)
            with pytest.raises(ClientResponseError):
                await origin.request(origin.request_bytes("GET", "/"), 5.0)
            url = server.url
        refused = Origin(url)  # nothing listens there any more
        with pytest.raises(ClientConnectorError) as info:
            await refused.request(refused.request_bytes("GET", "/"), 5.0)
        return info.value

    error = run(go())
    assert isinstance(error, ClientOSError) and "Cannot connect to host" in str(error)


def test_base_url_path_and_https_settings():
    origin = Origin("http://example.test:8080/prefix/")
    assert origin.request_bytes("GET", "/aggregates?a=1") == (
        b"GET /prefix/aggregates?a=1 HTTP/1.1\r\nHost: example.test:8080\r\n\r\n")
    secure = Origin("https://example.test")
    assert secure.port == 443 and secure.host_header == "example.test"
    with pytest.raises(ValueError):
        Origin("ftp://example.test")


# --- the runner's error accounting over this client -------------------------------------------------
def test_the_runner_never_resends_a_tag_but_asks_a_query_once_more():
    """A server that closes the connection of its first two requests without
    answering: the tag is dropped (ServerDisconnectedError), the query is sent
    again on a new connection and scored."""
    requests: list[int] = []

    async def handler(request, writer):
        requests.append(request.conn)
        if len(requests) <= 2:
            return False
        writer.write(NO_CONTENT if request.target == b"/user_tags" else ok(request.body))
        await writer.drain()
        return True

    async def go():
        async with TinyServer(handler) as server:
            config = RunnerConfig(base_url=server.url, progress=False, profile_probe_every_s=0, bucket_probes=False)
            async with Runner(Workload(seed=3), config) as runner:
                phase = Phase("p", None, 0)
                transport = runner.transport
                status, body = await transport.request("user_tags", transport.tag_request(b"{}"), phase)
                query = transport.query_request("POST", "/aggregates?x=1", b'{"rows":[]}')
                answer_status, answer = await transport.request("aggregates", query, phase)
            tag_posts = sum(r.target == b"/user_tags" for r in server.requests)
            return status, body, answer_status, answer, tag_posts, phase

    status, body, answer_status, answer, tag_posts, phase = run(go())
    assert status is None and body.split(b":")[0] == b"ServerDisconnectedError" and tag_posts == 1
    assert (answer_status, answer) == (200, b'{"rows":[]}')
    assert phase.errors == {"user_tags": 1, "user_profiles": 0, "aggregates": 0}
    assert len(phase.latency["aggregates"]) == 1 and len(phase.latency["user_tags"]) == 0
    assert requests == [1, 2, 3]  # tag, query, the query again on a new connection


def test_the_runner_counts_a_timed_out_tag_as_dropped():
    async def handler(request, writer):
        return True  # never answers

    async def go():
        async with TinyServer(handler) as server:
            config = RunnerConfig(base_url=server.url, progress=False, profile_probe_every_s=0,
                                  bucket_probes=False, tag_timeout_s=0.2, profile_every=10**9,
                                  aggregate_every=10**9)
            async with Runner(Workload(seed=3), config) as runner:
                report = await runner.run_phase(100, tags=3)
                return report, runner.acknowledged

    report, acknowledged = run(go())
    assert report.tags.dropped == 3 and report.tags.drop_reasons == {"TimeoutError": 3}
    assert report.errors.user_tags == 3 and acknowledged == []
