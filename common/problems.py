"""RFC 9457 problem documents for every error either API returns.

`install_problem_handlers(app)` makes FastAPI/Starlette errors (404, 405,
validation) come out as `application/problem+json` too, and turns an
unexpected exception into a logged 500 problem instead of a bare text body.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger(__name__)

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        type_: str = "about:blank",
    ):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers
        self.type = type_


def problem_response(
    status: int,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    type_: str = "about:blank",
    instance: str | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": type_,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


def problem_openapi(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting problem documents."""
    return {
        status: {
            "description": _TITLES.get(status, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}},
        }
        for status in statuses
    }


def install_problem_handlers(app: FastAPI) -> None:
    # Starlette types a handler by the base Exception; each is registered for one class.
    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return problem_response(
            exc.status, exc.detail, errors=exc.errors, headers=exc.headers, type_=exc.type,
            instance=request.url.path,
        )

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return problem_response(
            exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None), instance=request.url.path
        )

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"field": ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body")) or "request",
             "message": str(err.get("msg", "invalid"))}
            for err in exc.errors()
        ]
        fields = ", ".join(dict.fromkeys(e["field"] for e in errors))
        return problem_response(400, f"Invalid request parameter(s): {fields}.", errors=errors,
                                instance=request.url.path)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(500, "Unexpected server error; it has been logged.", instance=request.url.path)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)
    _document_400_not_422(app)



def amend_openapi(app: FastAPI, amend: Callable[[dict[str, Any]], None]) -> None:
    """Run `amend` on the app's OpenAPI document once, when it is first generated."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            amend(generate())  # generate() caches the document on app.openapi_schema
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document_problems(app: FastAPI, *statuses: int, skip_paths: Collection[str] = ()) -> None:
    """Add problem responses to every operation (those a middleware answers)."""
    responses = problem_openapi(*statuses)

    def amend(schema: dict[str, Any]) -> None:
        for path, operations in schema.get("paths", {}).items():
            if path in skip_paths:
                continue
            for operation in operations.values():
                if isinstance(operation, dict):
                    for status, response in responses.items():
                        operation.setdefault("responses", {}).setdefault(str(status), response)

    amend_openapi(app, amend)


def _document_400_not_422(app: FastAPI) -> None:
    """FastAPI documents a 422 for every operation with parameters; ours answer
    those errors 400 (`on_validation_error`), documented by each route. Drop the
    422s and their schemas so the OpenAPI document says what the API does."""

    def amend(schema: dict[str, Any]) -> None:
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                if isinstance(operation, dict):
                    operation.get("responses", {}).pop("422", None)
        components = schema.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)

    amend_openapi(app, amend)
