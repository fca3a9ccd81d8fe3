"""The front door: HAProxy on 127.0.0.1:8080, routing to the two API services.

Exactly the path /user_tags (any method, any query string) goes to the ingest
API; everything else goes to the query API. HAProxy runs as our own
foreground process (`haproxy -db -f <run>/haproxy/haproxy.cfg`), not as the
Debian service. It health-checks each backend on GET /health/ready; while a
backend is down the front door answers 503 with Retry-After and a problem
document itself. A request is re-sent to a server only when the connection
could not be established (retry-on conn-failure), so a tag that reached the
ingest API is never posted twice by the proxy.
"""

from __future__ import annotations

import csv
import io
import logging
import shutil
import socket
import subprocess
from pathlib import Path

from harness.local_stack.config import StackSettings
from harness.local_stack.process import Component, ManagedProcess, StackError

log = logging.getLogger(__name__)


def _problem(status: int, title: str, detail: str) -> str:
    body = f'{{"type":"about:blank","title":"{title}","status":{status},"detail":"{detail}"}}'
    # HAProxy string argument: single-quoted, no escapes needed in this body.
    return f"'{body}'"


def haproxy_executable() -> str:
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").is_file() else None)
    if found is None:
        raise StackError("haproxy not found: run scripts/check_prereqs.sh (Debian: apt-get install -y haproxy)")
    return found


class HAProxy(Component):
    name = "proxy"
    stop_timeout_s = 15.0

    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.ready_timeout_s = min(settings.start_timeout_s, 60.0)
        self.home = settings.run_dir / "haproxy"
        self.config_file = self.home / "haproxy.cfg"
        self.stats_socket = self.home / "haproxy.sock"
        self.process = ManagedProcess(self.name, [], settings.run_dir)

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.front_port}"

    @property
    def address(self) -> str:
        return self.base_url

    def ports(self) -> list[tuple[str, int]]:
        return [(self.settings.host, self.settings.front_port)]

    def haproxy_cfg(self) -> str:
        s = self.settings
        unavailable = _problem(503, "Service Unavailable", "the backend service is not available, retry later")
        bad_gateway = _problem(502, "Bad Gateway", "the backend service failed to answer")
        timeout = _problem(504, "Gateway Timeout", "the backend service did not answer in time")
        return f"""# Written by harness/local_stack/proxy.py; regenerated on every start.
global
    maxconn 4096
    nbthread 1
    stats socket {self.stats_socket} mode 600 level admin
    log stdout format raw local0 notice
    hard-stop-after 15s

defaults
    mode http
    log global
    option httplog
    option dontlog-normal
    option forwardfor
    timeout connect 2s
    timeout client 30s
    # Aggregate queries may take up to 60 s (SPEC).
    timeout server 65s
    timeout http-request 10s
    timeout http-keep-alive 30s
    timeout queue 5s
    timeout check 2s
    # Re-send only requests that never reached a server: never a tag twice.
    retries 2
    retry-on conn-failure
    http-reuse safe
    default-server check inter 1s fastinter 500ms downinter 1s rise 1 fall 2 pool-purge-delay 30s
    http-error status 503 content-type application/problem+json hdr Retry-After 1 string {unavailable}
    http-error status 502 content-type application/problem+json string {bad_gateway}
    http-error status 504 content-type application/problem+json string {timeout}

frontend front
    bind {s.host}:{s.front_port}
    acl is_ingest path /user_tags
    use_backend ingest if is_ingest
    default_backend query

backend ingest
    option httpchk GET /health/ready
    http-check expect status 200
    server ingest-1 {s.host}:{s.ingest_port}

backend query
    option httpchk GET /health/ready
    http-check expect status 200
    server query-1 {s.host}:{s.query_port}
"""

    def prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(self.haproxy_cfg())
        haproxy = haproxy_executable()
        check = subprocess.run([haproxy, "-c", "-q", "-f", str(self.config_file)], capture_output=True, text=True)
        if check.returncode != 0:
            raise StackError(f"haproxy rejects {self.config_file}:\n{check.stdout}{check.stderr}")
        self.stats_socket.unlink(missing_ok=True)
        self.process.argv = [haproxy, "-db", "-f", str(self.config_file)]

    # --- readiness -----------------------------------------------------------------
    def server_states(self) -> dict[str, str]:
        """{"ingest/ingest-1": "UP", ...} from the stats socket."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2.0)
            sock.connect(str(self.stats_socket))
            sock.sendall(b"show stat\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        text = b"".join(chunks).decode().lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {
            f"{row['pxname']}/{row['svname']}": row["status"]
            for row in rows
            if row.get("svname") not in (None, "FRONTEND", "BACKEND")
        }

    def ready(self) -> bool:
        with socket.create_connection((self.settings.host, self.settings.front_port), timeout=1.0):
            pass
        states = self.server_states()
        return bool(states) and all(state == "UP" for state in states.values())
