"""StepObserver: the incremental snapshot equals snapshot() after every statement."""

from __future__ import annotations

import ast
import contextlib
import io
import textwrap

import pytest

from app.examples import EXAMPLES
from app.inspector import snapshot
from app.inspector.labels import StorageLabeller
from app.inspector.observe import StepObserver


def _without_warnings(snap: dict) -> dict:
    return {k: v for k, v in snap.items() if k != "warnings"}


def _statements(code: str):
    return [compile(ast.Module([s], []), "<snippet>", "exec") for s in ast.parse(code).body]


def _observed(ns: dict, *statements: str) -> list:
    """Run each statement in `ns` and observe after it; the observations, in order."""
    observer, out = StepObserver(), []
    for code in statements:
        exec(code, ns)
        out.append(observer.observe(ns))
    return out


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
    exec("import torch\nimport numpy as np\na = np.zeros(3, dtype=np.float32)\nt = torch.from_numpy(a)", ns)
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
    assert second["s0"] == first["s0"]  # x's memory is still the same
    exec("x = x.contiguous()", ns)
    third = observer.observe(ns)
    x = next(t for t in third.snapshot["tensors"] if t["name"] == "x")
    assert third.storage_keys[x["storage"]] not in second.values()


def test_a_write_through_a_temporary_data_shows_at_its_own_step():
    """Regression: `lin.weight.data.fill_(7)` moves no version counter and leaves no new name,
    so the prints were unchanged and the step (and a traced run's final snapshot) kept the old
    values. The allocation's bytes are part of the fingerprint now."""
    ns: dict = {}
    _, got = _observed(ns, "import torch\nlin = torch.nn.Linear(2, 2)", "lin.weight.data.fill_(7)")
    assert got.changed
    weight = next(t for t in got.snapshot["tensors"] if t["name"] == "lin.weight")
    assert weight["preview"]["values"] == [[7.0, 7.0], [7.0, 7.0]]
    assert _without_warnings(got.snapshot) == _without_warnings(snapshot(ns))


def test_a_storage_write_shows_at_its_own_step():
    ns: dict = {}
    _, got = _observed(
        ns, "import torch\nx = torch.zeros(3)", "x.untyped_storage().fill_(0x3f)"
    )  # bytes 0x3f3f3f3f: 0.747 as float32
    assert got.changed and got.snapshot["tensors"][0]["version"] == 0
    assert _without_warnings(got.snapshot) == _without_warnings(snapshot(ns))


def _described(monkeypatch, describer: str) -> list[str]:
    """The names observe passes to `describer` from now on, in order."""
    from app.inspector import observe as observe_mod

    calls: list[str] = []
    real = getattr(observe_mod, describer)

    def counted(found, *a):
        calls.append(found.name)
        return real(found, *a)

    monkeypatch.setattr(observe_mod, describer, counted)
    return calls


def test_a_new_view_reuses_its_bases_entry(monkeypatch):
    """`b = a.t()` writes nothing: a is not described again, only b (one describe, not two)."""
    calls = _described(monkeypatch, "describe_tensor")
    # a.add_ moves a's version, and b's with it (one counter per view family)
    _observed({}, "import torch\na = torch.ones(2, 3)", "b = a.t()", "a.add_(1)")
    assert calls == ["a", "b", "a", "b"]


def test_final_observation_redoes_what_was_only_sampled():
    """Over 64 KiB only a sample of the bytes is compared at each step: a write to one element
    in the middle can go unseen there, but never in the final observation."""
    ns: dict = {}
    exec("import torch\nbig = torch.zeros(100_000)", ns)
    observer = StepObserver()
    observer.observe(ns)
    exec("big.data[50_001] = 5.0", ns)
    final = observer.observe(ns, final=True)
    assert final.snapshot["tensors"][0]["stats"]["max"] == 5.0
    assert _without_warnings(final.snapshot) == _without_warnings(snapshot(ns))


def test_an_unchanged_small_array_keeps_its_entry_and_a_written_one_is_redone(monkeypatch):
    calls = _described(monkeypatch, "describe_array")
    *_, got = _observed(
        {}, "import numpy as np\na = np.zeros(4)", "import torch\nt = torch.ones(2)", "a[1] = 3.0"
    )
    assert calls == ["a", "a"]
    assert got.snapshot["arrays"][0]["preview"]["values"] == [0.0, 3.0, 0.0, 0.0]


def _previewed(monkeypatch) -> list[tuple]:
    """The shapes whose values are read (tensors.tensor_preview) from now on, in order."""
    from app.inspector import tensors as tensors_mod

    calls: list[tuple] = []
    real = tensors_mod.tensor_preview

    def counted(t, *a):
        calls.append(tuple(t.shape))
        return real(t, *a)

    monkeypatch.setattr(tensors_mod, "tensor_preview", counted)
    return calls


def test_a_name_only_change_keeps_the_values_read_before(monkeypatch):
    """`same = x` (an alias) and rebinding a view's base change names, not values: the entry is
    redone but its preview and stats are the previous step's; a real write still reads them."""
    calls = _previewed(monkeypatch)
    ns: dict = {}
    steps = _observed(
        ns,
        "import torch\nx = torch.arange(4.)\nv = x.view(2, 2)",
        "same = x",
        "x = torch.zeros(1)",
        "v.mul_(3)",
    )
    # x and v; nothing for the alias; the new x; the write, through v into same's memory too
    assert calls == [(4,), (2, 2), (1,), (2, 2), (4,)]
    after_alias = next(t for t in steps[1].snapshot["tensors"] if t["name"] == "x")
    assert after_alias["aliases"] == ["same"]
    assert after_alias["preview"]["values"] == [0.0, 1.0, 2.0, 3.0]
    assert next(t for t in steps[2].snapshot["tensors"] if t["name"] == "v")["base"] == "same"
    assert next(t for t in steps[3].snapshot["tensors"] if t["name"] == "v")["preview"]["values"] == [
        [0.0, 3.0],
        [6.0, 9.0],
    ]
    assert _without_warnings(steps[3].snapshot) == _without_warnings(snapshot(ns))


def test_tensors_held_by_plain_objects_are_observed_step_by_step():
    code = textwrap.dedent("""\
        import torch
        class Data:
            def __init__(self):
                self.x = torch.zeros(3)
        d = Data()
        d.x.add_(1)
        d.x = d.x * 2
        d.y = d.x[:2]
        del d.x
    """)
    ns: dict = {"__name__": "__main__"}
    observer, seen = StepObserver(), []
    for stmt in _statements(code):
        exec(stmt, ns)
        got = observer.observe(ns)
        assert _without_warnings(got.snapshot) == _without_warnings(snapshot(ns))
        seen.append([(t["name"], t["version"]) for t in got.snapshot["tensors"]])
    assert seen[2:] == [[("d.x", 0)], [("d.x", 1)], [("d.x", 0)], [("d.x", 0), ("d.y", 0)], [("d.y", 0)]]


def _in_discovery_order(snap: dict) -> dict:
    """The snapshot with its storage ids renumbered s0, s1... in their order, as snapshot()
    numbers them."""
    ids = {s["id"]: f"s{n}" for n, s in enumerate(snap["storages"])}
    out = dict(snap, storages=[dict(s, id=ids[s["id"]]) for s in snap["storages"]])
    for section in ("tensors", "arrays"):
        out[section] = [dict(e, storage=ids.get(e["storage"])) for e in snap[section]]
    if snap.get("memory") is not None:  # the ledger's pinned storages are named by id too
        pinned = [dict(p, storage=ids[p["storage"]]) for p in snap["memory"]["pinned"]]
        out["memory"] = dict(snap["memory"], pinned=pinned)
    return out


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.id)
def test_with_the_runs_labeller_ids_are_the_stable_keys_and_all_else_as_a_snapshot(example):
    ns: dict = {"__name__": "__main__"}
    observer = StepObserver(labeller=StorageLabeller())
    for stmt in _statements(example.code):
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(stmt, ns)
        except Exception:  # the lessons that end in an error
            pass
        got = observer.observe(ns)
        assert all(got.storage_keys[s["id"]] == f"m{s['id'][1:]}" for s in got.snapshot["storages"])
        expected = _without_warnings(snapshot(ns))
        assert _without_warnings(_in_discovery_order(got.snapshot)) == expected


def test_a_first_observation_that_is_also_final_equals_a_snapshot():
    """A light run's final snapshot is a fresh observer's first look (no bytes compared)."""
    ns: dict = {}
    exec("import torch\nbig = torch.zeros(100_000)\nbig[50_001] = 5.0\nlin = torch.nn.Linear(2, 2)", ns)
    exec("view = big[10:]\nlin.weight.data.fill_(7)", ns)
    final = StepObserver().observe(ns, final=True)
    assert _without_warnings(final.snapshot) == _without_warnings(snapshot(ns))
