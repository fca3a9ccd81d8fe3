"""Limits on request headers: too many or too large headers get 431 with a
problem document (RFC 6585), before any route runs.

uvicorn's httptools parser sets no limit of its own (verified: a 10 MB header
and 10,000 headers reach the application), so the cap is enforced here. It
bounds what the application processes; the bytes were already read by the
server, so in production the front proxy's buffer (HAProxy `tune.bufsize`)
is the memory bound (docs/DEPLOYMENT.md).
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from common.problems import document_problems, problem_response


class HeaderLimits:
    def __init__(self, app: ASGIApp, max_count: int, max_bytes: int) -> None:
        self.app = app
        self.max_count = max_count
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            if len(headers) > self.max_count:
                await self._refuse(scope, receive, send, f"More than {self.max_count} request headers.")
                return
            if sum(len(name) + len(value) for name, value in headers) > self.max_bytes:
                await self._refuse(scope, receive, send, f"Request headers larger than {self.max_bytes} bytes.")
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, detail: str) -> None:
        # The body is never read; closing the connection keeps it out of the next request.
        response = problem_response(431, detail, headers={"Connection": "close"}, instance=scope["path"])
        await response(scope, receive, send)


def install_header_limits(app: FastAPI, max_count: int, max_bytes: int) -> None:
    app.add_middleware(HeaderLimits, max_count=max_count, max_bytes=max_bytes)
    document_problems(app, 431)
