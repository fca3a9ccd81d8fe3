"""GET /user_profiles/{cookie} served as a plain ASGI handler, ahead of FastAPI's stack.

The profile query is the query API's hot path (100/s at the reference load).
FastAPI's layers around it (middleware, routing, a `Request`, dependency
resolution, query-parameter models) cost about as much CPU as the two
Cassandra reads themselves (docs/BENCHMARKS.md, issue 15). This handler
answers only a request whose parameters are plainly valid: a GET, a cookie of
1 to MAX_COOKIE_CHARS characters decoded without a replacement character,
`time_range` once and valid, `limit` at most once, in decimal digits, at most
PROFILE_CAP. Anything else (a request to refuse, a POST carrying its expected
answer, Cassandra not connected yet) goes to FastAPI as it came, so every
problem document keeps one home, query_api/routes.py. The guards run in the
same order as FastAPI's (metrics outermost, header limits, then the bearer
token when one is set), and the answer is the route's, byte for byte
(tests/unit/test_query_fast_path.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import parse_qsl

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import SecretStr
from starlette.datastructures import URL
from starlette.types import ASGIApp, Receive, Scope, Send

from common.auth import BearerAuth
from common.http_limits import HeaderLimits
from common.limits import MAX_COOKIE_CHARS, PROFILE_CAP
from common.problems import problem_response
from common.timestamps import TimeRange, TimeRangeError, parse_time_range
from query_api.config import QuerySettings
from query_api.metrics import RequestMetrics, query_metrics
from query_api.routes import PROFILE_PATH, profile_answer, router, unavailable_response
from query_api.store import CASSANDRA_UNAVAILABLE, ProfileStore

log = logging.getLogger(__name__)

PREFIX = PROFILE_PATH.split("{", 1)[0]  # "/user_profiles/"
_LIMIT_TEXTS = frozenset(str(n) for n in range(PROFILE_CAP + 1))  # "0" .. "200", no sign, no leading zero
_REPLACEMENT = "\ufffd"  # what a percent-escape that is not UTF-8 decodes to
# Where the plain query rides in the request's scope through the guards.
_QUERY = "query_api.profile_query"


@dataclass(frozen=True, slots=True)
class ProfileQuery:
    cookie: str
    time_range: TimeRange
    limit: int


def plain_profile_query(scope: Scope) -> ProfileQuery | None:
    """The profile query this request plainly is, or None: FastAPI decides."""
    if scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path"):
        return None
    path: str = scope["path"]
    if not path.startswith(PREFIX):
        return None
    cookie = path[len(PREFIX):]
    if not cookie or len(cookie) > MAX_COOKIE_CHARS or _REPLACEMENT in cookie:
        return None
    time_range = limit = None
    # Decoded as Starlette decodes it (latin-1, then percent-escapes as UTF-8).
    for name, value in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True):
        if name == "time_range":
            if time_range is not None:
                return None
            time_range = value
        elif name == "limit":
            if limit is not None or value not in _LIMIT_TEXTS:
                return None
            limit = value
    if time_range is None:
        return None
    try:
        parsed = parse_time_range(time_range)
    except TimeRangeError:
        return None
    return ProfileQuery(cookie, parsed, PROFILE_CAP if limit is None else int(limit))


class ProfileFastPath:
    def __init__(self, app: FastAPI, settings: QuerySettings, token: SecretStr | None) -> None:
        self._app = app  # the FastAPI app: its state holds the Cassandra reader
        # The route FastAPI would have matched; only its template is read (the metrics' endpoint).
        self._route = next(route for route in router.routes if isinstance(route, APIRoute)
                           and route.path == PROFILE_PATH and "GET" in (route.methods or ()))
        guarded: ASGIApp = self._handle
        if token is not None and token.get_secret_value():
            guarded = BearerAuth(guarded, token.get_secret_value())
        guarded = HeaderLimits(guarded, settings.http_max_headers, settings.http_max_header_bytes)
        self._guarded = RequestMetrics(guarded, query_metrics())

    def store(self) -> ProfileStore | None:
        """The profile store once Cassandra is connected (the app's lifespan made the reader)."""
        reader = getattr(self._app.state, "reader", None)
        return getattr(reader, "profiles", None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send, query: ProfileQuery) -> None:
        scope[_QUERY] = query
        await self._guarded(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        query: ProfileQuery = scope[_QUERY]
        scope["route"] = self._route  # past the guards, as FastAPI's router sets it
        store = self.store()
        assert store is not None  # checked before the request came here
        try:
            answer = await profile_answer(store, query.cookie, query.time_range, query.limit)
        except CASSANDRA_UNAVAILABLE as exc:
            response = unavailable_response(scope["method"], URL(scope=scope).path, exc)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            response = problem_response(500, "Unexpected server error; it has been logged.",
                                        instance=URL(scope=scope).path)
        else:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", str(len(answer)).encode()),
                                    (b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": answer, "more_body": False})
            return
        await response(scope, receive, send)
