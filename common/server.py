"""How both APIs are served: the one launch definition, used by
`python -m ingest_api` / `python -m query_api`, the local stack, the tests
and the image's entrypoint (docker/api-entrypoint.sh).

A process's address comes from HTTP_HOST and HTTP_PORT (its settings class
gives the service's default port); WEB_CONCURRENCY worker processes.
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

from common.logging import uvicorn_log_config
from common.settings import HttpSettings, LoggingSettings

# Longer than HAProxy's idle connection pool keeps a connection, so the proxy
# never reuses one that uvicorn is about to close.
KEEP_ALIVE_S = 75


def serve(app_factory: str, settings: HttpSettings) -> None:
    """Run `app_factory` (`package.module:function`) until stopped."""
    extra: dict[str, Any] = {}
    if isinstance(settings, LoggingSettings) and settings.log_format == "json":
        # uvicorn's own lines in JSON too, from the first; the text format keeps uvicorn's default.
        extra["log_config"] = uvicorn_log_config(settings.log_level, "json")
    uvicorn.run(
        app_factory,
        factory=True,
        host=settings.http_host,
        port=settings.http_port,
        workers=settings.web_concurrency,
        loop="uvloop",
        http="httptools",
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_S,
        **extra,
    )


def command(package: str, python: str = sys.executable) -> list[str]:
    """The command line that serves one API (`ingest_api` or `query_api`)."""
    return [python, "-m", package]


def address_environment(host: str, port: int) -> dict[str, str]:
    """The variables that put a served API on host:port."""
    return {"HTTP_HOST": host, "HTTP_PORT": str(port)}
