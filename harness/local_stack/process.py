"""Managed background processes and the component base class.

A ManagedProcess is started detached (own session and process group, stdin
from /dev/null, stdout and stderr appended to <run_dir>/logs/<name>.log) and is
remembered by <run_dir>/pids/<name>.pid, which holds the pid, the process's
create time and its argv. "Running" means that pid exists, was created at that
time and still runs that argv: a recycled pid or a stale file never counts, so
`down` can only ever signal processes the stack started.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

log = logging.getLogger(__name__)


# How long start() waits for a busy port to become free.
PORT_FREE_WAIT_S = 15.0


class StackError(RuntimeError):
    """A component could not be set up, started or stopped."""


class NotReadyError(StackError):
    """A component did not become ready in time (or died while starting)."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


def port_in_use(host: str, port: int) -> bool:
    """True when something accepts TCP connections (or holds the port) at host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def tail_file(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a text file ('' when it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            block, data = 8192, b""
            while size > 0 and data.count(b"\n") <= lines:
                step = min(block, size)
                size -= step
                fh.seek(size)
                data = fh.read(step) + data
                block *= 2
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


@dataclass
class ManagedProcess:
    name: str
    argv: Sequence[str]
    run_dir: Path
    env: Mapping[str, str] = field(default_factory=dict)  # added to os.environ
    cwd: Path | None = None
    # How the running process's command line ends (default: argv after the
    # executable). Differs for a launcher script that execs something else.
    cmdline_suffix: Sequence[str] | None = None
    _popen: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "pids" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "logs" / f"{self.name}.log"

    @property
    def _suffix(self) -> list[str]:
        return list(self.cmdline_suffix if self.cmdline_suffix is not None else self.argv[1:])

    # --- pid file -------------------------------------------------------------
    def _read_pid_file(self) -> dict[str, Any] | None:
        try:
            record = json.loads(self.pid_file.read_text())
            int(record["pid"]), float(record["create_time"]), list(record["argv"])
            return record
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            log.warning("%s: ignoring unreadable pid file %s", self.name, self.pid_file)
            return None

    def _write_pid_file(self, pid: int, create_time: float) -> None:
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": pid, "create_time": create_time, "argv": list(self.argv),
                                   "cmdline_suffix": list(self._suffix)}))
        tmp.replace(self.pid_file)

    def _remove_pid_file(self) -> None:
        self.pid_file.unlink(missing_ok=True)

    # --- state ---------------------------------------------------------------------
    def process(self) -> psutil.Process | None:
        """The live process recorded in the pid file, if it is really ours."""
        record = self._read_pid_file()
        if record is None:
            return None
        try:
            proc = psutil.Process(int(record["pid"]))
            if abs(proc.create_time() - float(record["create_time"])) > 0.01:
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                self._reap(proc.pid)
                return None
            # Started by this object and not exited: ours, whatever its command line
            # reads while a launcher script execs the next stage (it can read empty
            # or as an intermediate script; seen as a false "exited before it was ready").
            if self._popen is not None and self._popen.pid == proc.pid and self._popen.poll() is None:
                return proc
            # An interpreter started through a shebang shows up as [python, script, ...]:
            # compare the arguments after the executable, as a suffix. A launcher
            # script that execs something else matches its own argv until it has.
            cmdline = proc.cmdline()
            suffixes = [list(record["argv"][1:]), list(record.get("cmdline_suffix") or record["argv"][1:])]
            if not any(not s or cmdline[-len(s) :] == s for s in suffixes):
                return None
            return proc
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None

    @property
    def pid(self) -> int | None:
        proc = self.process()
        return proc.pid if proc else None

    def is_running(self) -> bool:
        return self.process() is not None

    def rss_mb(self) -> float | None:
        proc = self.process()
        if proc is None:
            return None
        try:
            procs = [proc, *proc.children(recursive=True)]
            return sum(p.memory_info().rss for p in procs) / 2**20
        except psutil.NoSuchProcess:
            return None

    def exit_code(self) -> int | None:
        if self._popen is not None:
            return self._popen.poll()
        return None

    def _reap(self, pid: int) -> None:
        if self._popen is not None and self._popen.pid == pid:
            self._popen.poll()
            return
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> int:
        """Start the process unless it already runs; returns its pid."""
        proc = self.process()
        if proc is not None:
            log.info("%s: already running (pid %d)", self.name, proc.pid)
            return proc.pid
        if self.pid_file.exists():
            log.info("%s: removing stale pid file", self.name)
            self._remove_pid_file()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env}
        with self.log_file.open("ab") as out:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            out.write(f"\n=== {stamp} local_stack starting {self.name}: {' '.join(self.argv)}\n".encode())
            out.flush()
            self._popen = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=env,
                start_new_session=True,
                close_fds=True,
            )
        pid = self._popen.pid
        try:
            ps = psutil.Process(pid)
            create_time = ps.create_time()
            self._write_pid_file(pid, create_time)
            # Wait (briefly) for the exec, so that the cmdline check holds from now on.
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline and self._popen.poll() is None:
                if not self._suffix or ps.cmdline()[-len(self._suffix) :] == self._suffix:
                    break
                time.sleep(0.01)
        except psutil.NoSuchProcess:
            pass
        log.info("%s: started pid %d, log %s", self.name, pid, self.log_file)
        return pid

    def _signal_group(self, proc: psutil.Process, sig: int) -> None:
        try:
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass

    def _wait_gone(self, proc: psutil.Process, timeout: float) -> bool:
        """Wait until the process has exited. A zombie counts as exited: once
        orphaned, it is reaped by pid 1 whenever that gets round to it."""
        if self._popen is not None and self._popen.pid == proc.pid:
            try:
                self._popen.wait(timeout=timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while True:
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    return True
            except psutil.NoSuchProcess:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM the process group, SIGKILL after `timeout` s. True if something was stopped."""
        proc = self.process()
        if proc is None:
            self._remove_pid_file()
            return False
        log.info("%s: stopping pid %d (SIGTERM, up to %.0f s)", self.name, proc.pid, timeout)
        self._signal_group(proc, signal.SIGTERM)
        if not self._wait_gone(proc, timeout):
            log.warning("%s: still running after %.0f s, sending SIGKILL", self.name, timeout)
            self._signal_group(proc, signal.SIGKILL)
            self._wait_gone(proc, 10.0)
        self._remove_pid_file()
        return True

    def kill(self) -> bool:
        """SIGKILL the process group at once (crash tests). True if something was killed."""
        proc = self.process()
        if proc is None:
            self._remove_pid_file()
            return False
        log.info("%s: killing pid %d (SIGKILL)", self.name, proc.pid)
        self._signal_group(proc, signal.SIGKILL)
        self._wait_gone(proc, 10.0)
        self._remove_pid_file()
        return True

    def wait_ready(
        self,
        check: Callable[[], bool],
        timeout: float,
        interval: float = 0.25,
        log_files: Sequence[Path] = (),
    ) -> None:
        """Poll `check` until it returns True; raise NotReadyError on deadline or exit.

        Exceptions raised by `check` count as "not ready yet"; the last one is
        reported if the deadline passes.
        """
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while True:
            if not self.is_running():
                code = self.exit_code()
                raise NotReadyError(
                    f"{self.name} exited before it was ready"
                    + (f" (exit code {code})" if code is not None else ""),
                    self.log_tail(log_files=log_files),
                )
            try:
                if check():
                    return
                last_error = None
            except Exception as exc:
                last_error = exc
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                reason = f": last check error: {last_error!r}" if last_error else ""
                raise NotReadyError(
                    f"{self.name} not ready after {timeout:.0f} s{reason}",
                    self.log_tail(log_files=log_files),
                )
            time.sleep(min(interval, remaining))

    def log_tail(self, lines: int = 40, log_files: Sequence[Path] = ()) -> str:
        """The last lines of the process log (current run only) and of `log_files`."""
        parts = []
        for path in [self.log_file, *log_files]:
            text = tail_file(path, lines)
            if path == self.log_file:
                # Only what the latest start wrote (start() writes a header line).
                marker = text.rfind(f"local_stack starting {self.name}:")
                if marker >= 0:
                    text = text[text.rfind("\n", 0, marker) + 1 :]
            if text:
                parts.append(f"--- {path} (last {lines} lines) ---\n{text}")
        return "\n".join(parts)


class Component:
    """One process of the stack: how to configure, start, check and stop it.

    Subclasses set `self.process` and implement `ready()`; `prepare()` writes
    configuration and data directories and runs before every start.
    """

    name: str
    process: ManagedProcess
    ready_timeout_s: float = 180.0
    stop_timeout_s: float = 30.0

    # --- to override ------------------------------------------------------------
    def prepare(self) -> None:
        """Write configuration, create directories (idempotent)."""

    def ready(self) -> bool:
        raise NotImplementedError

    def ports(self) -> list[tuple[str, int]]:
        """(host, port) pairs the component listens on (checked before a start)."""
        return []

    @property
    def log_files(self) -> list[Path]:
        """Log files besides the process's own stdout/stderr log."""
        return []

    @property
    def address(self) -> str:
        return ""

    # --- common behaviour ----------------------------------------------------------
    def is_running(self) -> bool:
        return self.process.is_running()

    def start(self) -> None:
        """Start unless already running (then it is only re-checked by wait_ready)."""
        if self.process.is_running():
            log.info("%s: already running (pid %s)", self.name, self.process.pid)
            return
        # A port can be held for a moment after a restart: by a closing
        # connection of the previous process, or as the ephemeral source port
        # of some client's connection (shifted test ports lie in the kernel's
        # ephemeral range, 32768-60999). Wait a little before giving up.
        deadline = time.monotonic() + PORT_FREE_WAIT_S
        while busy := [f"{h}:{p}" for h, p in self.ports() if port_in_use(h, p)]:
            if time.monotonic() > deadline:
                raise StackError(
                    f"{self.name}: cannot start, port(s) {', '.join(busy)} already in use by another process"
                )
            time.sleep(0.5)
        self.prepare()
        self.process.start()

    def wait_ready(self, timeout: float | None = None) -> None:
        self.process.wait_ready(self.ready, timeout or self.ready_timeout_s, log_files=self.log_files)
        log.info("%s: ready%s", self.name, f" at {self.address}" if self.address else "")

    def check_ready(self) -> bool:
        """One readiness probe, never raising (for `status`)."""
        if not self.is_running():
            return False
        try:
            return bool(self.ready())
        except Exception:
            return False

    def stop(self, timeout: float | None = None) -> bool:
        return self.process.stop(timeout or self.stop_timeout_s)

    def kill(self) -> bool:
        return self.process.kill()

    def log_tail(self, lines: int = 40) -> str:
        return self.process.log_tail(lines, log_files=self.log_files)
