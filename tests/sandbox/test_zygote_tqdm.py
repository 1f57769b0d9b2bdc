"""A lesson that draws a tqdm bar is warmed in the zygote like every other, and leaves it as a fresh
import would: single-threaded (no monitor thread to fork from) and with no tqdm lock that every
forked child would share."""

from __future__ import annotations

import io
import threading

import app.examples
from app.examples import by_id
from app.sandbox import zygote
from app.sandbox.limits import SandboxLimits


def test_the_tqdm_lesson_leaves_no_thread_and_no_shared_lock(monkeypatch):
    from tqdm import std

    lesson = by_id("tqdm-loader")
    assert lesson is not None and "tqdm(" in lesson.code
    monkeypatch.setattr(app.examples, "EXAMPLES", [lesson])
    before = {t.ident for t in threading.enumerate()}
    assert zygote._warm_up(SandboxLimits(exec_timeout_s=30.0)) is None
    # No thread the warm-up started is left (another test's thread may end meanwhile: a set
    # equality failed once in the full suite when one did).
    assert {t.ident for t in threading.enumerate()} - before == set()
    assert std.tqdm.monitor is None
    assert "_lock" not in vars(std.tqdm) and "mp_lock" not in vars(std.TqdmDefaultWriteLock)


def test_without_the_reset_the_bar_would_leave_both(monkeypatch):
    """What _forget_tqdm undoes is real: a bar starts the thread and makes the shared lock."""
    from tqdm import std, tqdm

    for _ in tqdm(range(2), file=io.StringIO()):
        pass
    try:
        assert std.tqdm.monitor is not None and std.tqdm.monitor.is_alive()
        assert "mp_lock" in vars(std.TqdmDefaultWriteLock)
    finally:
        zygote._forget_tqdm()
    assert std.tqdm.monitor is None and "mp_lock" not in vars(std.TqdmDefaultWriteLock)
