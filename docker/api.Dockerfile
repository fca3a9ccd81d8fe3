# syntax=docker/dockerfile:1.7
#
# One image for both HTTP services and the one-shot schema step:
#   docker run IMAGE ingest    -> python -m ingest_api on :8081
#   docker run IMAGE query     -> python -m query_api  on :8082
#   docker run IMAGE schema    -> python -m cql (applies cql/*.cql)
# Build from the repository root:
#   docker build -f docker/api.Dockerfile -t allezon/api:dev .
#
# Dependencies come only from requirements/api.lock (hash-checked), then the
# project itself with --no-deps, exactly as on a developer machine.

ARG PYTHON_IMAGE=python:3.11.15-slim-bookworm
ARG NODE_IMAGE=node:20.19.5-bookworm-slim

# The dashboard's chart library, from its lock (query_api/dashboard/package-lock.json).
FROM ${NODE_IMAGE} AS dashboard
WORKDIR /src/query_api/dashboard
COPY query_api/dashboard/package.json query_api/dashboard/package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY requirements/api.lock requirements/api.lock
RUN pip install --require-hashes -r requirements/api.lock
COPY pyproject.toml ./
COPY common/ common/
COPY ingest_api/ ingest_api/
COPY query_api/ query_api/
COPY cql/ cql/
COPY --from=dashboard /src/query_api/dashboard/node_modules/ query_api/dashboard/node_modules/
RUN pip install --no-deps . \
 && python -c "import ingest_api.app, query_api.app, cql.apply"

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LOG_LEVEL=INFO \
    HTTP_HOST=0.0.0.0
RUN groupadd --system --gid 10001 allezon \
 && useradd --system --uid 10001 --gid allezon --home-dir /app --shell /usr/sbin/nologin allezon
COPY --from=build /opt/venv /opt/venv
# The sources stay in /app as well (the working directory is first on
# sys.path for `python -m`), so cql/*.cql sits beside cql/apply.py.
WORKDIR /app
COPY --from=build /src/common/ common/
COPY --from=build /src/ingest_api/ ingest_api/
COPY --from=build /src/query_api/ query_api/
COPY --from=build /src/cql/ cql/
COPY --chmod=0755 docker/api-entrypoint.sh /usr/local/bin/api-entrypoint
USER 10001:10001
EXPOSE 8081 8082
ENTRYPOINT ["/usr/local/bin/api-entrypoint"]
CMD ["help"]
