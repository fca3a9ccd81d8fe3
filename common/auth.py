"""Optional bearer-token authentication for the APIs (pure ASGI, no
BaseHTTPMiddleware, which costs a task and a queue per request).

When the service's token variable (INGEST_AUTH_TOKEN, QUERY_AUTH_TOKEN) is
unset or empty, `install_bearer_auth` installs nothing, so requests pay
nothing. When set, every request except the health checks must carry
`Authorization: Bearer <token>`; otherwise 401 with a problem document and
`WWW-Authenticate: Bearer` (RFC 6750). The comparison is constant-time.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from fastapi import FastAPI
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from common.problems import amend_openapi, document_problems, problem_response

log = logging.getLogger(__name__)

# Orchestrators probe these without credentials.
OPEN_PATHS = frozenset({"/health/live", "/health/ready"})
REALM = "allezon"


class BearerAuth:
    def __init__(self, app: ASGIApp, token: str, open_paths: frozenset[str] = OPEN_PATHS) -> None:
        self.app = app
        self._token = token.encode()
        self._open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._open_paths:
            await self.app(scope, receive, send)
            return
        presented = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                presented = value
                break
        if presented is None:
            await self._refuse(scope, receive, send, "The request needs an Authorization: Bearer token.", None)
            return
        scheme, _, credentials = presented.partition(b" ")
        # compare_digest takes time independent of where the bytes differ.
        if scheme.lower() != b"bearer" or not hmac.compare_digest(credentials.strip(), self._token):
            await self._refuse(scope, receive, send, "The bearer token is not valid.", "invalid_token")
            return
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, detail: str, error: str | None) -> None:
        challenge = f'Bearer realm="{REALM}"' + (f', error="{error}"' if error else "")
        log.info("refused unauthenticated request method=%s path=%s reason=%s",
                 scope.get("method"), scope["path"], error or "no token")
        response = problem_response(401, detail, headers={"WWW-Authenticate": challenge}, instance=scope["path"])
        await response(scope, receive, send)


def install_bearer_auth(app: FastAPI, token: SecretStr | None) -> bool:
    """Require the token on every non-health request; no-op (nothing installed) without one."""
    if token is None or not token.get_secret_value():
        return False
    app.add_middleware(BearerAuth, token=token.get_secret_value())
    document_problems(app, 401, skip_paths=OPEN_PATHS)
    amend_openapi(app, _declare_bearer_scheme)
    return True


def _declare_bearer_scheme(schema: dict[str, Any]) -> None:
    schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
        "type": "http", "scheme": "bearer"}
    for path, operations in schema.get("paths", {}).items():
        if path not in OPEN_PATHS:
            for operation in operations.values():
                if isinstance(operation, dict):
                    operation["security"] = [{"bearer": []}]
