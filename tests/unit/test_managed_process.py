"""Which live process a pid file names is ours (harness/local_stack/process.py)."""

from __future__ import annotations

from pathlib import Path

from harness.local_stack.process import ManagedProcess


def test_a_process_this_object_started_stays_ours_while_its_command_line_differs(tmp_path: Path) -> None:
    # The launcher execs a command line that never ends as declared, as a script
    # between two exec stages can read.
    started = ManagedProcess("launcher", ["sh", "-c", "exec sleep 30"], tmp_path, cmdline_suffix=["never-matches"])
    started.start()
    try:
        assert started.is_running()
        # Another reader of the same pid file (a later `make status`) has no handle
        # on the process: there the command line must match, against pid reuse.
        reader = ManagedProcess("launcher", ["sh", "-c", "exec sleep 30"], tmp_path, cmdline_suffix=["never-matches"])
        assert not reader.is_running()
    finally:
        assert started.kill()
    assert not started.is_running()
