"""What both API applications share around their own routes: the error
documents, the guards in the order they must run, liveness, and a heap
frozen for the process's life."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI
from pydantic import SecretStr

from common.auth import install_bearer_auth
from common.http_limits import install_header_limits
from common.problems import install_problem_handlers
from common.settings import HttpSettings


def install_common(app: FastAPI, settings: HttpSettings, token: SecretStr | None) -> None:
    """Problem documents for every error, /health/live, the bearer token (when
    one is set) and the header limits; call it after the app's own routes."""
    install_problem_handlers(app)

    @app.get("/health/live", summary="Liveness: the process answers")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    # Added last = outermost: header limits are checked before the token.
    install_bearer_auth(app, token)
    install_header_limits(app, settings.http_max_headers, settings.http_max_header_bytes)


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Freeze what exists once the app has started (modules, FastAPI's routes
    and models, pydantic validators: ~60,000 objects), which lives as long as
    the process: the cyclic collector then stops re-scanning it in every full
    collection. Unfrozen, those collections cost ~10 % of the ingest API's CPU
    at 1,000 tags/s and paused its loop for tens of ms (docs/BENCHMARKS.md)."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
