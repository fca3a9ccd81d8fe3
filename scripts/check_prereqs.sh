#!/usr/bin/env bash
# Checks (and where possible installs) what the local stack needs outside the
# venv: a JDK 17+ (`java`, and `javac` for the job's Java sinks), Apache Maven `mvn`, and HAProxy (installed from the
# Debian archive when missing; with --browser also chromium and its driver). Idempotent and quiet when all is present.
set -euo pipefail

fail() { echo "error: $*" >&2; exit 1; }

command -v java >/dev/null 2>&1 \
  || fail "java not found: install a JDK 17+ (Debian: apt-get install -y openjdk-17-jdk-headless)"
java_major=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
[ "${java_major:-0}" -ge 17 ] 2>/dev/null \
  || fail "java ${java_major:-?} found, need 17 or newer (Cassandra 5 and Kafka 4 run on JDK 17)"

command -v javac >/dev/null 2>&1 || [ -x "${JAVA_HOME:-/nonexistent}/bin/javac" ] \
  || fail "javac not found: the stream job compiles its Java Cassandra sinks; install a JDK 17+ (Debian: apt-get install -y openjdk-17-jdk-headless)"
command -v mvn >/dev/null 2>&1 \
  || fail "mvn not found: install Apache Maven (Debian: apt-get install -y maven); it fetches the Kafka and Cassandra jars"

# Installs Debian packages (the packages' own services are not used).
apt_install() {
  local SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || fail "$* missing and not root: run 'apt-get install -y $*' as root"
    SUDO=sudo
  fi
  command -v apt-get >/dev/null 2>&1 || fail "$* missing and no apt-get: install them yourself"
  if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; then
    $SUDO apt-get update -q >/dev/null
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
  fi
}

if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
  echo "haproxy not found: installing it from the Debian archive" >&2
  apt_install haproxy
fi

# `--browser` (make test): the dashboard's browser test drives Debian's chromium through its driver.
if [ "${1:-}" = "--browser" ] && ! { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }; then
  echo "chromium or chromedriver not found: installing chromium and chromium-driver from the Debian archive (about 100 MB)" >&2
  apt_install chromium chromium-driver
fi
