"""Reading /proc races with processes and threads that exit: a pid's files can vanish before
open (ENOENT) or between open and read (ESRCH). Pins the CI flake where the isolation test's
gone() raised ProcessLookupError for a grandchild killed between the two."""

from __future__ import annotations

import builtins
import io
import os
import subprocess
import sys

import pytest

from app.sandbox import strays
from tests.sandbox.hostile_kit import gone


class _ExitsMidRead(io.StringIO):
    def read(self, *args):
        raise ProcessLookupError(3, "No such process")


@pytest.fixture
def child_pid():
    """A live child of this process, for child_pids() to find."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def test_child_pids_lists_a_real_child(child_pid):
    assert child_pid in (strays.child_pids() or set())


def test_child_pids_survives_a_thread_gone_after_listdir(monkeypatch, child_pid):
    """Regression: a vanished thread's ENOENT used to make the whole answer None, so a sweep
    skipped every stray that round."""
    real_listdir = os.listdir
    monkeypatch.setattr(strays.os, "listdir", lambda path: real_listdir(path) + ["2147483646"])
    assert child_pid in (strays.child_pids() or set())


def test_child_pids_survives_esrch_on_read(monkeypatch, child_pid):
    """Regression: ESRCH on read (the thread exited between open and read) escaped child_pids."""
    real_open = builtins.open
    own_tid = str(os.getpid())

    def fake_open(path, *args, **kwargs):
        if path.startswith("/proc/self/task/") and f"/task/{own_tid}/" not in path:
            return _ExitsMidRead()
        return real_open(path, *args, **kwargs)

    real_listdir = os.listdir
    monkeypatch.setattr(strays.os, "listdir", lambda path: real_listdir(path) + ["2147483646"])
    monkeypatch.setattr(strays, "open", fake_open, raising=False)
    assert child_pid in (strays.child_pids() or set())


def test_child_pids_is_none_without_the_children_file(monkeypatch):
    def no_file(path, *args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", path)

    monkeypatch.setattr(strays, "open", no_file, raising=False)
    assert strays.child_pids() is None


def test_gone_treats_esrch_between_open_and_read_as_gone(monkeypatch):
    """Regression: gone() raised ProcessLookupError (test_grandchild_holding_the_result_pipe...
    failed in CI) when the pid exited between open and read."""
    import tests.sandbox.hostile_kit as kit

    monkeypatch.setattr(kit, "open", lambda *a, **k: _ExitsMidRead(), raising=False)
    assert gone(os.getpid(), timeout_s=1.0) is True


def test_gone_is_false_for_a_live_process():
    assert gone(os.getpid(), timeout_s=0.1) is False
