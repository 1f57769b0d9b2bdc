"""The inspector against a hostile namespace, in process: patched torch, subclasses that lie,
modes left active, storages resized under views, exceptions and slowness in the snippet's own
code, shapes and names the public schema refuses."""

from __future__ import annotations

import time
from types import FrameType
from typing import cast

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from app.inspector import InspectLimits, budget, snapshot
from app.inspector.observe import StepObserver
from app.inspector.tensors import in_bounds

from .helpers import by_name


def test_a_patched_tensor_class_does_not_make_the_snapshot_lie(monkeypatch):
    """Regression: after `torch.Tensor.stride = lambda self, *a: (999,)` the snapshot of
    `torch.ones(2, 2)` showed stride [999]."""
    a = torch.ones(2, 3)
    truth = snapshot({"a": a, "b": a.t()})
    monkeypatch.setattr(torch.Tensor, "stride", lambda self, *args: (999,), raising=False)
    monkeypatch.setattr(torch.Tensor, "shape", property(lambda self: (7,)), raising=False)
    monkeypatch.setattr(torch.Tensor, "storage_offset", lambda self: 5, raising=False)
    monkeypatch.setattr(torch.UntypedStorage, "data_ptr", lambda self: 8, raising=False)
    monkeypatch.setattr(torch, "isfinite", lambda *a, **k: 1 / 0)
    assert snapshot({"a": a, "b": a.t()}) == truth
    assert StepObserver().observe({"a": a, "b": a.t()}).snapshot == truth


def test_a_subclass_cannot_lie_about_its_metadata_or_its_type():
    class Liar(torch.Tensor):
        def stride(self, *args):
            return (42,)

        @property
        def shape(self):  # type: ignore[override]  # hostile on purpose: a read-only, raising shape
            raise KeyboardInterrupt

    class FakeArray(np.ndarray):
        @property  # type: ignore[misc]  # hostile on purpose: a shape that lies
        def shape(self):
            return (99,)

    class Pretender:
        @property  # type: ignore[misc]  # hostile on purpose: claims to be a tensor
        def __class__(self):
            return torch.Tensor

    s = snapshot({"t": torch.ones(2, 2).as_subclass(Liar), "n": np.ones(3).view(FakeArray), "p": Pretender()})
    assert by_name(s["tensors"], "t")["stride"] == [2, 1]
    assert by_name(s["tensors"], "t")["shape"] == [2, 2]
    assert by_name(s["arrays"], "n")["shape"] == [3]
    assert [t["name"] for t in s["tensors"]] == ["t"] and s["warnings"] == []


def test_a_dispatch_mode_left_active_by_the_snippet_neither_runs_nor_is_lost():
    class Raising(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            raise KeyboardInterrupt("the snippet's mode")

    x = torch.arange(4.0)
    mode = Raising()
    mode.__enter__()
    try:
        s = snapshot({"x": x})
        with pytest.raises(KeyboardInterrupt):
            x + 1  # still the snippet's, after the snapshot
    finally:
        mode.__exit__(None, None, None)
    assert s["tensors"][0]["preview"]["values"] == [0.0, 1.0, 2.0, 3.0]
    assert s["tensors"][0]["stats"]["max"] == 3.0


def test_a_storage_resized_under_a_view_is_flagged_and_not_read():
    """Regression: reading y's values read freed memory (SIGSEGV in the worker)."""
    x = torch.ones(10)
    y = x[2:]
    x.untyped_storage().resize_(0)
    assert not in_bounds(y) and in_bounds(torch.ones(3)) and in_bounds(torch.empty(0))
    for snap in (snapshot({"y": y}), StepObserver().observe({"y": y}).snapshot):
        entry = snap["tensors"][0]
        assert "out_of_bounds" in entry["flags"]
        assert (entry["preview"], entry["stats"]) == (None, None)


def test_reading_a_tensor_leaves_its_storage_resizable():
    """Regression: t.numpy() marks t's storage not resizable for good, so a step's preview made a
    later `x.untyped_storage().resize_(0)` fail in stepped runs only."""
    xs = {"f": torch.ones(8), "d": torch.ones(8, dtype=torch.float64), "big": torch.ones(10**5)}
    observer = StepObserver()
    snapshot(xs)
    observer.observe(xs)
    observer.observe(xs, final=True)
    for t in xs.values():
        t.untyped_storage().resize_(0)  # raises "not resizable" if any read marked it


class Slow:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __repr__(self) -> str:
        time.sleep(self.seconds)
        return "slow"


@pytest.mark.parametrize("sleep_s", [0.02, 30])
def test_the_time_budget_truncates_a_slow_or_hanging_walk(sleep_s):
    """A __repr__ that is slow (soft check) or hangs (the alarm): the snapshot is cut at the
    budget, keeps what the walk found first, and says so."""
    limits = InspectLimits(time_budget_s=0.2)
    ns = {"first": torch.ones(2), "d": {Slow(sleep_s): torch.ones(1) for _ in range(100)}}
    started = time.perf_counter()
    s = snapshot(ns, limits=limits)
    assert time.perf_counter() - started < 0.2 * budget.HARD_FACTOR + 0.3
    assert s["tensors"][0]["name"] == "first" and s["truncated"] is True
    assert s["warnings"][-1].startswith("inspection stopped at its time budget of 0.2 s")


def test_a_budget_leaves_no_alarm_and_an_earlier_timer_keeps_its_due_time():
    import signal

    signal.setitimer(signal.ITIMER_REAL, 30)
    try:
        with budget.limit(0.05) as spent:
            pass
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 29 < left <= 30 and spent.expired is False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    started = time.perf_counter()
    with budget.limit(0.04) as spent:
        try:
            time.sleep(5)  # stuck: the alarm interrupts it
        except budget.Expired as exc:
            budget.absorb(exc)
        waited = time.perf_counter() - started
        assert 0.04 * budget.WALK_SHARE < waited < 1.0 and not budget.over()
    assert spent.expired is True and not budget.active()
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit, GeneratorExit])
def test_base_exceptions_from_the_snippets_code_are_warnings(exc):
    class Key:
        def __repr__(self):
            raise exc

    class Odd(Exception):
        def __str__(self):
            raise exc

    class Holder:
        def __init__(self):
            self.t = torch.ones(1)

    class BadIter(list):
        def __iter__(self):
            raise Odd()

    ns = {"__name__": __name__, "d": {Key(): torch.ones(1)}, "h": Holder(), "l": BadIter([torch.zeros(1)])}
    for snap in (snapshot(ns), StepObserver().observe(ns).snapshot):
        assert [t["name"] for t in snap["tensors"]] == ["d[<Key>]", "h.t", "l[0]"]


def test_more_than_64_dimensions_are_left_out_and_long_names_cut_unique():
    ns = {
        "t": torch.ones([1] * 100),
        "x" * 300: torch.ones(1),
        "x" * 299 + "y": torch.ones(2),
        "ok": torch.ones(3),
    }
    s = snapshot(ns)
    names = [t["name"] for t in s["tensors"]]
    assert names == ["x" * 255 + "…", "x" * 254 + "…2", "ok"]
    assert s["truncated"] is True
    assert s["warnings"] == ["t: a tensor of 100 dimensions is not shown; the playground shows up to 64"]
    aliases = snapshot({"t": torch.ones(1), "many": [ns["ok"]] * 100})
    assert len(aliases["tensors"][1]["aliases"]) == InspectLimits().aliases_max


def test_numpy_error_state_and_recursion_limit_of_the_snippet_do_not_apply_while_reading():
    """Regression: under the snippet's np.seterr(all="raise") an overflowing mean raised
    FloatingPointError and the tensor lost its stats; under a recursion limit just above the
    caller's depth the walk and the preview's recursion failed."""
    import sys

    depth, frame = 0, cast(FrameType | None, sys._getframe())
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    old_err, old_limit = np.seterr(all="raise"), sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(depth + 12)  # a few frames more than this test's own
        s = snapshot(
            {"big": torch.tensor([1.7e308, 1.7e308], dtype=torch.float64), "deep": torch.ones([2] * 10)}
        )
    finally:
        sys.setrecursionlimit(old_limit)
        np.seterr(**old_err)
    assert by_name(s["tensors"], "big")["stats"]["mean"] == "inf"
    assert by_name(s["tensors"], "deep")["preview"] is not None and s["warnings"] == []


def test_names_stay_unique_when_keys_print_alike():
    """Regression: dict keys with equal reprs (or reprs equal once cut to 60 characters) gave
    several tensors one name, which the server's schema refuses: the whole run was a Crash."""

    class Same:
        def __repr__(self):
            return "k"

    long_a, long_b = "x" * 100 + "a", "x" * 100 + "b"
    s = snapshot(
        {
            "d": {Same(): torch.ones(1), Same(): torch.ones(2), Same(): torch.ones(3)},
            "e": {long_a: torch.zeros(1), long_b: torch.zeros(2)},
        }
    )
    names = [t["name"] for t in s["tensors"]]
    assert names[:3] == ["d[k]", "d[k]…2", "d[k]…3"] and len(set(names)) == 5
