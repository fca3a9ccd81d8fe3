"""The front door: HAProxy on 127.0.0.1:8080, routing to the two API services.

The configuration is docker/haproxy.cfg, the same file Compose uses (its
header says what it does); this module runs HAProxy on it as our own
foreground process (`haproxy -db -f docker/haproxy.cfg`), not as the Debian
service, and sets the environment variables the file reads: the local
addresses, one server per backend, a stats socket, from which `ready()`
reads the servers' health-check states, and the admin frontend on
PROXY_ADMIN_PORT (/health, /stats, and /metrics: HAProxy's Prometheus exporter).
"""

from __future__ import annotations

import csv
import io
import logging
import shutil
import socket
import subprocess
from pathlib import Path

from harness.local_stack.config import REPO_ROOT, StackSettings
from harness.local_stack.process import Component, ManagedProcess, StackError

log = logging.getLogger(__name__)

# The one HAProxy configuration, shared with docker-compose.yml.
CONFIG_FILE = REPO_ROOT / "docker" / "haproxy.cfg"


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
        self.env_file = self.home / "haproxy.env"
        self.stats_socket = self.home / "haproxy.sock"
        self.process = ManagedProcess(self.name, [], settings.run_dir)

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.front_port}"

    @property
    def address(self) -> str:
        return self.base_url

    @property
    def metrics_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.proxy_admin_port}/metrics"

    def ports(self) -> list[tuple[str, int]]:
        return [(self.settings.host, self.settings.front_port), (self.settings.host, self.settings.proxy_admin_port)]

    def environment(self) -> dict[str, str]:
        """The variables docker/haproxy.cfg reads, for the local stack."""
        s = self.settings
        return {
            "PROXY_BIND": f"{s.host}:{s.front_port}",
            "PROXY_INGEST_SERVER": f"{s.host}:{s.ingest_port}",
            "PROXY_QUERY_SERVER": f"{s.host}:{s.query_port}",
            "PROXY_SERVER_SLOTS": "1",
            "PROXY_STATS_SOCKET": str(self.stats_socket),
            "PROXY_ADMIN_BIND": f"{s.host}:{s.proxy_admin_port}",
        }

    def prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        env = self.environment()
        # For a look by hand: `env $(cat <run>/haproxy/haproxy.env) haproxy -c -f docker/haproxy.cfg`.
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        haproxy = haproxy_executable()
        check = subprocess.run(
            [haproxy, "-c", "-q", "-f", str(CONFIG_FILE)], env=env, capture_output=True, text=True
        )
        if check.returncode != 0:
            raise StackError(f"haproxy rejects {CONFIG_FILE} with {self.env_file}:\n{check.stdout}{check.stderr}")
        self.stats_socket.unlink(missing_ok=True)
        self.process.argv = [haproxy, "-db", "-f", str(CONFIG_FILE)]
        self.process.env = env

    # --- readiness -----------------------------------------------------------------
    def server_states(self) -> dict[str, str]:
        """{"ingest/ingest1": "UP", ...} from the stats socket."""
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
