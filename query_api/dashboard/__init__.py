"""The dashboard page (GET /dashboard) and its static assets.

The page is plain HTML and JavaScript that call the public endpoints of this
API (/aggregates, /buckets/newest, /dimensions, /user_profiles, /pipeline), so
what it shows are the API's own answers. Its one dependency, the chart
library, comes from npm through the lock file beside this module (`npm ci`
in scripts/bootstrap.sh and the image build): no CDN.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse, Response

from common.problems import Problem, problem_openapi

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
CHART_LIBRARY = HERE / "node_modules" / "uplot" / "dist"

# Every file the page loads, by the name it asks for: nothing else is served.
ASSETS = {
    "dashboard.js": (STATIC / "dashboard.js", "text/javascript"),
    "dashboard.css": (STATIC / "dashboard.css", "text/css"),
    "uPlot.iife.min.js": (CHART_LIBRARY / "uPlot.iife.min.js", "text/javascript"),
    "uPlot.min.css": (CHART_LIBRARY / "uPlot.min.css", "text/css"),
}

router = APIRouter(include_in_schema=False)


@router.get("/dashboard")
async def page() -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html")


@router.get("/dashboard/assets/{name}", responses=problem_openapi(404, 503))
async def asset(name: str) -> Response:
    if name not in ASSETS:
        raise Problem(404, f"No dashboard asset {name!r}.")
    path, media_type = ASSETS[name]
    if not path.is_file():
        # Only the chart library can be missing: it is installed, not committed.
        raise Problem(503, f"{path.name} is not installed: run `make bootstrap` (npm ci in {HERE}).")
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "max-age=300"})
