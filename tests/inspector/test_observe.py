"""StepObserver: the incremental snapshot equals snapshot() after every statement."""
from __future__ import annotations

import ast
import contextlib
import io

import pytest

from app.examples import EXAMPLES
from app.inspector import snapshot
from app.inspector.observe import StepObserver


def _without_warnings(snap: dict) -> dict:
    return {k: v for k, v in snap.items() if k != "warnings"}


def _statements(code: str):
    return [compile(ast.Module([s], []), "<snippet>", "exec") for s in ast.parse(code).body]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.id)
def test_equals_a_full_snapshot_after_every_statement(example):
    ns: dict = {"__name__": "__main__"}
    observer = StepObserver()
    for stmt in _statements(example.code):
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(stmt, ns)
        except Exception:  # the lessons that end in an error
            pass
        got = observer.observe(ns)
        assert _without_warnings(got.snapshot) == _without_warnings(snapshot(ns))


def test_unchanged_namespace_reuses_the_previous_snapshot():
    ns: dict = {}
    exec("import torch\nx = torch.ones(2)", ns)
    observer = StepObserver()
    first = observer.observe(ns)
    exec("import math\nprint_me = 'text'", ns)
    second = observer.observe(ns)
    assert first.changed and not second.changed
    assert second.snapshot is first.snapshot


def test_a_write_through_data_refreshes_the_parameter():
    """w = p.data has its own version counter: writing w must still refresh p (shared memory)."""
    ns: dict = {}
    exec("import torch\nconv = torch.nn.Linear(2, 2)\nw = conv.weight.data", ns)
    observer = StepObserver()
    observer.observe(ns)
    exec("w.zero_()", ns)
    snap = observer.observe(ns).snapshot
    weight = next(t for t in snap["tensors"] if t["name"] == "conv.weight")
    assert weight["preview"]["values"] == [[0.0, 0.0], [0.0, 0.0]]


def test_a_numpy_write_refreshes_the_tensor_sharing_it():
    ns: dict = {}
    exec("import torch\nimport numpy as np\na = np.zeros(3, dtype=np.float32)\n"
         "t = torch.from_numpy(a)", ns)
    observer = StepObserver()
    observer.observe(ns)
    exec("a[0] = 7", ns)
    got = observer.observe(ns)
    assert got.changed
    assert next(t for t in got.snapshot["tensors"] if t["name"] == "t")["preview"]["values"][0] == 7.0


def test_storage_keys_stay_while_memory_lives_and_change_for_new_memory():
    ns: dict = {}
    exec("import torch\nx = torch.ones(2, 3).t()", ns)
    observer = StepObserver()
    first = observer.observe(ns).storage_keys
    exec("y = x * 2", ns)
    second = observer.observe(ns).storage_keys
    assert second["s0"] == first["s0"]                  # x's memory is still the same
    exec("x = x.contiguous()", ns)
    third = observer.observe(ns)
    x = next(t for t in third.snapshot["tensors"] if t["name"] == "x")
    assert third.storage_keys[x["storage"]] not in second.values()
