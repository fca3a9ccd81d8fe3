"""Request bodies read with a cap: 413 as soon as a body is known to be too
large, from its Content-Length or while its chunks arrive, so an oversized
body is never held whole. Plain ASGI (the ingest API's fast path has no
`Request`); a route passes `request.scope, request.receive`.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope

from common.problems import Problem


class ClientGone(ClientDisconnect):
    """The client disconnected before its body was read: nobody to answer."""


def _too_large(limit: int) -> Problem:
    return Problem(413, f"The body is larger than {limit} bytes.")


async def read_body_capped(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The body, or Problem 413 once it is known to exceed `limit` bytes."""
    for name, value in scope["headers"]:
        if name == b"content-length":  # the first one, as Headers.get
            if value.isdigit() and int(value) > limit:
                raise _too_large(limit)
            break
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientGone
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        if not message.get("more_body", False):
            # The usual case: the whole body in one message.
            return chunk if not chunks else b"".join([*chunks, chunk])
        chunks.append(chunk)
