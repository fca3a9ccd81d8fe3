"""The platform as the runner reaches it: tags to the base URL, queries to the
query URL (the same keep-alive connections when they are the same place),
each endpoint with its own timeout, and every request's latency or error
counted in its phase."""

from __future__ import annotations

import time

from harness.replay.config import RunnerConfig
from harness.replay.http import ClientError, ClientOSError, Origin, ServerDisconnectedError
from harness.replay.phase import Phase

# Idle connections are dropped after 3 s, before a server would (uvicorn closes them after 5 s by default).
IDLE_TIMEOUT_S = 3.0


class Transport:
    def __init__(self, config: RunnerConfig):
        self.base_url = config.base_url
        self.query_url = config.query_url or config.base_url
        self.timeouts = {"user_tags": config.tag_timeout_s, "user_profiles": config.profile_timeout_s,
                         "aggregates": config.aggregate_timeout_s}
        self.tag_origin: Origin | None = None  # open()
        self.query_origin: Origin | None = None
        self.tag_head = b""  # POST /user_tags up to the Content-Length value

    def open(self) -> None:
        self.tag_origin = Origin(self.base_url, idle_timeout=IDLE_TIMEOUT_S)
        same = self.query_url.rstrip("/") == self.base_url.rstrip("/")
        self.query_origin = self.tag_origin if same else Origin(self.query_url, idle_timeout=IDLE_TIMEOUT_S)
        self.tag_head = self.tag_origin.head_bytes("POST", "/user_tags")

    async def close(self) -> None:
        for origin in {self.tag_origin, self.query_origin}:
            if origin is not None:
                await origin.close()

    def tag_request(self, body: bytes) -> bytes:
        return self.tag_head + b"%d\r\n\r\n" % len(body) + body

    def query_request(self, method: str, path_and_query: str, body: bytes | None = None) -> bytes:
        assert self.query_origin is not None, "open() the transport first"
        return self.query_origin.request_bytes(method, path_and_query, body)

    async def request(self, endpoint: str, data: bytes, phase: Phase | None) -> tuple[int | None, bytes]:
        """Send `data` (a whole request) to `endpoint`'s origin; (status, body), status None on a
        transport error or timeout (body = the error). The latency is measured from writing the
        request to the response's last byte.

        A query (read-only) whose kept-alive connection turns out closed by the
        server is sent once more on a new one; a tag never is (it could be stored twice).
        """
        origin = self.tag_origin if endpoint == "user_tags" else self.query_origin
        assert origin is not None, "open() the transport first"
        retry = endpoint != "user_tags"
        timeout = self.timeouts[endpoint]
        error: Exception
        while True:
            try:
                status, payload, seconds = await origin.request(data, timeout)
                break
            except (ServerDisconnectedError, ClientOSError) as exc:
                if retry:
                    retry = False
                    continue
                error = exc
            except (ClientError, TimeoutError, OSError) as exc:
                error = exc
            if phase is not None:
                phase.errors[endpoint] += 1
            return None, (type(error).__name__ + (f": {error}" if str(error) else "")).encode()
        if phase is not None:
            phase.latency[endpoint].add(seconds * 1000.0)
            phase.last_response = time.monotonic()
        return status, payload
