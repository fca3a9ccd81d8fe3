# syntax=docker/dockerfile:1.7
#
# Flink 1.20 JobManager/TaskManager image with Python 3.11, PyFlink (from
# requirements/flink.lock), the job's code, its jars and the Prometheus
# metrics reporter. The same image serves docker-compose.yml (standalone
# application mode) and the FlinkDeployment in k8s/ (Flink Kubernetes
# Operator, native application mode).
# Build from the repository root:
#   docker build -f docker/flink.Dockerfile -t allezon/flink:dev .
#
# The official image is Ubuntu 22.04 (jammy), whose own Python is 3.10, so
# CPython 3.11 is built from the python.org release tarball (SHA-256 pinned)
# in a stage on the very same base, with --enable-shared, which PyFlink's
# embedded interpreter (pemja, libpython inside the JVM) needs.

ARG FLINK_IMAGE=flink:1.20.5-scala_2.12-java17
# The Flink version of FLINK_IMAGE: the jars fetched from Maven Central below must match it.
ARG FLINK_VERSION=1.20.5
ARG MAVEN_IMAGE=maven:3.9.11-eclipse-temurin-17

########################################################################
FROM ${FLINK_IMAGE} AS python
ARG PYTHON_VERSION=3.11.15
ARG PYTHON_SHA256=272179ddd9a2e41a0fc8e42e33dfbdca0b3711aa5abf372d3f2d51543d09b625
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Ubuntu package versions are not pinned: they roll with security updates.
# hadolint ignore=DL3008
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
      build-essential ca-certificates wget xz-utils \
      libbz2-dev libffi-dev libgdbm-dev liblzma-dev libncursesw5-dev \
      libreadline-dev libsqlite3-dev libssl-dev uuid-dev zlib1g-dev; \
    rm -rf /var/lib/apt/lists/*
# hadolint ignore=DL3003
RUN set -eux; \
    wget -nv -O /tmp/python.tar.xz \
      "https://www.python.org/ftp/python/${PYTHON_VERSION}/Python-${PYTHON_VERSION}.tar.xz"; \
    echo "${PYTHON_SHA256}  /tmp/python.tar.xz" | sha256sum -c -; \
    mkdir -p /tmp/python-src; \
    tar -xJf /tmp/python.tar.xz -C /tmp/python-src --strip-components=1; \
    cd /tmp/python-src; \
    ./configure --prefix=/opt/python --enable-shared --with-ensurepip=install \
      LDFLAGS="-Wl,-rpath,/opt/python/lib"; \
    make -j "$(nproc)"; \
    make install; \
    cd /; rm -rf /tmp/python-src /tmp/python.tar.xz; \
    rm -rf /opt/python/lib/python3.11/test /opt/python/lib/python3.11/idlelib/idle_test; \
    /opt/python/bin/python3.11 -c "import ssl, sqlite3, bz2, lzma, ctypes, uuid, readline"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY requirements/flink.lock /tmp/flink.lock
RUN /opt/python/bin/python3.11 -m pip install --require-hashes -r /tmp/flink.lock

########################################################################
FROM ${FLINK_IMAGE} AS connectors
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY docker/flink-connectors.txt /tmp/flink-connectors.txt
RUN set -eu; \
    mkdir -p /opt/flink/connectors; \
    grep -Ev '^[[:space:]]*(#|$)' /tmp/flink-connectors.txt | while read -r gav sha1; do \
      IFS=: read -r group artifact version classifier <<< "$gav"; \
      file="${artifact}-${version}${classifier:+-$classifier}.jar"; \
      url="https://repo1.maven.org/maven2/$(echo "$group" | tr . /)/${artifact}/${version}/${file}"; \
      out="/opt/flink/connectors/${file}"; \
      wget -nv -O "$out" "$url"; \
      published=$(wget -qO- "${url}.sha1" | cut -c1-40); \
      actual=$(sha1sum "$out" | cut -d' ' -f1); \
      echo "$gav pinned=$sha1 published=$published actual=$actual"; \
      [ "$actual" = "$sha1" ] && [ "$actual" = "$published" ] \
        || { echo "checksum mismatch for $gav" >&2; exit 1; }; \
    done; \
    ls -l /opt/flink/connectors

########################################################################
# The job's Java operators (cube windows, Cassandra sinks): the Maven module
# flink_jobs/operators/, built as the local stack builds it (`mvn package`).
# Its pom pins Flink to this image's version and the driver to the connector
# jars' (both provided).
FROM ${MAVEN_IMAGE} AS operators
WORKDIR /build
COPY flink_jobs/operators/pom.xml pom.xml
COPY flink_jobs/operators/src/main src/main
RUN --mount=type=cache,target=/root/.m2 \
    set -eux; \
    mvn -B -q -DskipTests package; \
    mkdir -p /opt/allezon; \
    cp target/allezon-operators.jar /opt/allezon/allezon-operators.jar

########################################################################
# The Prometheus metrics reporter (k8s/flink-deployment.yaml), the release
# of this image's Flink version from Maven Central; -C fails the build unless
# the jar matches the checksum published beside it.
FROM ${MAVEN_IMAGE} AS metrics
ARG FLINK_VERSION
RUN --mount=type=cache,target=/root/.m2 \
    set -eux; \
    mvn -B -q -C org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
      -Dartifact="org.apache.flink:flink-metrics-prometheus:${FLINK_VERSION}" \
      -DoutputDirectory=/opt/metrics-prometheus; \
    ls -l /opt/metrics-prometheus

########################################################################
FROM ${FLINK_IMAGE}
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Runtime libraries of the Python build (most are already in the base).
# hadolint ignore=DL3008
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
      libbz2-1.0 libffi8 libgdbm6 liblzma5 libncursesw6 libreadline8 \
      libsqlite3-0 libssl3 libuuid1 zlib1g; \
    rm -rf /var/lib/apt/lists/*
COPY --from=python /opt/python /opt/python
# python/pip on PATH; fail the build unless PyFlink matches the Flink runtime
# of the base image exactly and libpython (thread mode) can be found.
RUN set -eux; \
    for b in python python3 pip pip3; do \
      ln -sf "/opt/python/bin/${b%3}3" "/usr/local/bin/$b"; \
    done; \
    python3 --version; \
    pyflink_version=$(python3 -c "import importlib.metadata as m; print(m.version('apache-flink'))"); \
    ls "/opt/flink/lib/flink-dist-${pyflink_version}.jar"; \
    ls /opt/flink/opt/flink-python-*.jar; \
    python3 -c "import find_libpython; assert find_libpython.find_libpython(), 'no libpython'"
COPY --from=connectors --chown=flink:flink /opt/flink/connectors /opt/flink/connectors
COPY --from=operators --chown=flink:flink /opt/allezon/allezon-operators.jar /opt/allezon/allezon-operators.jar
# The reporter is a plugin (loaded from its own directory, in a class loader
# of its own); this jar replaces the base image's copy, which has its name.
COPY --from=metrics --chown=flink:flink /opt/metrics-prometheus/ /opt/flink/plugins/metrics-prometheus/
# The job and the shared package it imports. Not pip-installed (pyproject.toml
# packages the services); PYTHONPATH makes them importable by the client
# (PythonDriver on the JobManager) and by the TaskManagers' interpreters.
COPY --chown=flink:flink common/ /opt/allezon/common/
# The job's Python modules only (the operators' sources were built above).
COPY --chown=flink:flink flink_jobs/*.py /opt/allezon/flink_jobs/
ENV PYTHONPATH=/opt/allezon \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FLINK_CONNECTOR_DIR=/opt/flink/connectors \
    FLINK_SINKS_JAR=/opt/allezon/allezon-operators.jar
# Fail the build unless the entry point can start: its modules import, and
# the jars it and the cluster load are where they are expected.
ARG FLINK_VERSION
RUN set -eux; \
    mkdir -p /flink-data/checkpoints /flink-data/savepoints /flink-data/ha; \
    chown -R flink:flink /flink-data; \
    python3 -c "import common, flink_jobs.user_tags_job, flink_jobs.launch, pyflink.datastream, pydantic_settings"; \
    ls "/opt/flink/lib/flink-dist-${FLINK_VERSION}.jar" "/opt/flink/opt/flink-python-${FLINK_VERSION}.jar" \
      "${FLINK_SINKS_JAR}" "${FLINK_CONNECTOR_DIR}"/*.jar; \
    [ "$(ls /opt/flink/plugins/metrics-prometheus)" = "flink-metrics-prometheus-${FLINK_VERSION}.jar" ]
# /flink-data: checkpoints, savepoints and HA metadata; mount a volume there
# (compose: named volume; k8s: ReadWriteMany PVC). The entrypoint of the
# official image drops to the flink user (uid 9999) when started as root.
