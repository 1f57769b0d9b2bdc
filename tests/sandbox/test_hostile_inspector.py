"""The inspector against the snippet itself, through the real sandbox: patched torch and numpy,
storages resized under live views, exceptions and slowness in the snippet's own code while the
namespace is read, and tensors torch allows but the public schema does not (over 64 dimensions,
names over 256 characters).

Each attack runs three ways, plain and stepped (with states and changes-only): the runs must
agree, and the run must end as the snippet left it (ok) with its other tensors shown. The
next_run_is_right fixture then checks that the zygote is the same process and the next benign run
is right.
"""

from __future__ import annotations

import textwrap

import pytest

from app.convert import to_response

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("next_run_is_right")]

MODES = {"plain": None, "stepped": True, "changes_only": {"states": False}}
TENSOR_FIELDS = (
    "shape",
    "stride",
    "storage_offset",
    "dtype",
    "is_contiguous",
    "numel",
    "element_size",
    "requires_grad",
    "is_leaf",
    "grad_fn",
    "version",
    "is_view",
    "base",
    "grad",
    "preview",
    "stats",
    "flags",
    "byte_range",
)
ARRAY_FIELDS = ("shape", "strides", "dtype", "offset_bytes", "is_view", "preview", "byte_range")


def _runs(sandbox, code: str, **kwargs: object) -> dict[str, dict]:
    """Each mode's result, after checking that the server accepts it as it is (the public
    schema: at most 64 dimensions, names of at most 256 characters...)."""
    code = textwrap.dedent(code)
    runs = {}
    for mode, trace in MODES.items():
        outcome = sandbox.run(code, trace=trace, **kwargs)
        response = to_response(outcome)
        assert response.error is None or response.error.type != "Crash", (mode, response.error)
        runs[mode] = outcome.result()
    return runs


def _fields(entries: list[dict], fields: tuple[str, ...]) -> dict[str, tuple]:
    return {e["name"]: tuple(e.get(f) for f in fields) for e in entries}


def _same_outcome(runs: dict[str, dict]) -> dict:
    """All three runs ended alike: ok, no error, the same tensor and array names."""
    plain = runs["plain"]
    for mode, res in runs.items():
        assert (res["ok"], res["error"]) == (True, None), (mode, res["error"], res["warnings"])
        assert res["snapshot"] is not None, (mode, res["warnings"])
        assert [t["name"] for t in res["snapshot"]["tensors"]] == [
            t["name"] for t in plain["snapshot"]["tensors"]
        ], mode
    return plain["snapshot"]


BASE = """\
import torch, numpy as np
a = torch.arange(6.).reshape(2, 3)
b = a.t()
w = torch.ones(3, requires_grad=True)
y = (w * 2).sum()
n = np.arange(4.0).reshape(2, 2)[:, ::-1]
"""
PATCHES = """\
torch.Tensor.stride = lambda self, *a: (999,)
torch.Tensor.size = lambda self, *a: (7,)
torch.Tensor.shape = property(lambda self: (7,))
torch.Tensor.dtype = property(lambda self: torch.int8)
torch.Tensor.storage_offset = lambda self: 5
torch.Tensor.is_contiguous = lambda self, *a, **k: 1 / 0
torch.Tensor.untyped_storage = lambda self: 1 / 0
torch.Tensor.data_ptr = lambda self: 8
torch.Tensor.element_size = lambda self: 99
torch.Tensor.numel = lambda self: -1
torch.Tensor.requires_grad = property(lambda self: 1 / 0)
torch.Tensor.grad = property(lambda self: 1 / 0)
torch.Tensor.grad_fn = property(lambda self: 1 / 0)
torch.Tensor._version = property(lambda self: 1 / 0)
torch.Tensor._base = property(lambda self: 1 / 0)
torch.Tensor.is_leaf = property(lambda self: 1 / 0)
torch.Tensor.detach = lambda self: 1 / 0
torch.Tensor.numpy = lambda self, **k: 1 / 0
torch.Tensor.__getitem__ = lambda self, i: 1 / 0
torch.Tensor.__torch_function__ = classmethod(lambda *a, **k: 1 / 0)
torch.UntypedStorage.data_ptr = lambda self: 8
torch.UntypedStorage.nbytes = lambda self: 2**40
torch.isfinite = torch.tensor = torch.arange = torch.stack = lambda *a, **k: 1 / 0
torch.no_grad = None
np.isfinite = np.ix_ = np.asarray = np.count_nonzero = lambda *a, **k: 1 / 0
"""


def test_patched_torch_and_numpy_do_not_make_the_snapshot_lie(sandbox):
    """Regression: after `torch.Tensor.stride = lambda self, *a: (999,)` the snapshot of
    `torch.ones(2, 2)` showed stride [999] (every accessor was looked up on the patched class);
    a patched UntypedStorage.data_ptr made a stepped run dereference its address (SIGSEGV)."""
    truth = sandbox.result(BASE)["snapshot"]
    runs = _runs(sandbox, BASE + PATCHES)
    snap = _same_outcome(runs)
    assert _fields(snap["tensors"], TENSOR_FIELDS) == _fields(truth["tensors"], TENSOR_FIELDS)
    assert _fields(snap["arrays"], ARRAY_FIELDS) == _fields(truth["arrays"], ARRAY_FIELDS)
    assert snap["storages"] == truth["storages"]
    for mode in ("stepped", "changes_only"):
        steps = runs[mode]["steps"]
        assert len(steps) == 6 + PATCHES.count("\n") and not runs[mode]["steps_truncated"], mode
    final = runs["stepped"]
    assert final["snapshot"] == snap


def test_a_storage_resized_under_live_views_is_flagged_not_read(sandbox):
    """Regression: `x.untyped_storage().resize_(0)` with `y = x[2:]` alive: the snapshot read
    y's values through numpy from freed memory and the worker died of SIGSEGV."""
    runs = _runs(
        sandbox,
        """\
        import torch
        x = torch.ones(10)
        y = x[2:]
        x.untyped_storage().resize_(0)
        z = torch.arange(3.)
    """,
    )
    snap = _same_outcome(runs)
    for name in ("x", "y"):
        entry = next(t for t in snap["tensors"] if t["name"] == name)
        assert "out_of_bounds" in entry["flags"] and entry["preview"] is None, entry
        assert any(w.startswith(f"{name}: values not read") for w in snap["warnings"])
    assert next(t for t in snap["tensors"] if t["name"] == "z")["preview"]["values"] == [0.0, 1.0, 2.0]


HOSTILE = {
    "repr_keyboard_interrupt": """\
        class Key:
            def __repr__(self):
                raise KeyboardInterrupt
        d = {Key(): torch.ones(1)}
    """,
    "class_property_system_exit": """\
        class Sneaky:
            @property
            def __class__(self):
                raise SystemExit(3)
        s = Sneaky()
        box = [Sneaky(), torch.ones(1)]
    """,
    "metaclass_generator_exit": """\
        class Meta(type):
            def __getattribute__(cls, name):
                raise GeneratorExit
        class Thing(metaclass=Meta):
            pass
        thing = Thing()
        pair = (Thing(), torch.ones(1))
    """,
    "unpack_hook_keyboard_interrupt": """\
        def unpack(t):
            raise KeyboardInterrupt
        x = torch.ones(2, requires_grad=True)
        with torch.autograd.graph.saved_tensors_hooks(lambda t: t, unpack):
            y = x * x
    """,
    "exception_str_system_exit": """\
        class Odd(Exception):
            def __str__(self):
                raise SystemExit(1)
        def unpack(t):
            raise Odd()
        x = torch.ones(2, requires_grad=True)
        with torch.autograd.graph.saved_tensors_hooks(lambda t: t, unpack):
            y = x * x
    """,
}


@pytest.mark.parametrize("attack", sorted(HOSTILE))
def test_exceptions_raised_by_the_snippets_code_while_inspecting_are_not_its_outcome(sandbox, attack):
    """Regression: KeyboardInterrupt, SystemExit or GeneratorExit raised by a __repr__, a
    __class__ property, a metaclass or a saved-tensor hook while the inspector read the namespace
    lost the snapshot ("snapshot failed"), or, in a stepped run, escaped the step hook into the
    snippet and became its error; so did one raised by the __str__ of an exception the inspector
    put in a warning."""
    runs = _runs(
        sandbox,
        "import torch\nbefore = torch.zeros(2)\n"
        + textwrap.dedent(HOSTILE[attack])
        + "after = torch.zeros(3)\n",
    )
    snap = _same_outcome(runs)
    names = [t["name"] for t in snap["tensors"]]
    assert names[0] == "before" and "after" in names and len(names) >= 3, names
    assert not any(w.startswith("snapshot failed") for w in snap["warnings"])


@pytest.mark.parametrize("sleep_s", [0.05, 60])
def test_a_slow_or_hanging_repr_truncates_the_snapshot_within_its_budget(sandbox, sleep_s):
    """Regression: a __repr__ that sleeps, on each of 100 dict keys, had no bound but the
    worker's hard kill: the run was lost as a TimeLimit, plain or stepped. (A 3 s run: the
    budgets are 1 s each, however loaded the machine.)"""
    runs = _runs(
        sandbox,
        timeout_s=3,
        code=f"""\
        import time, torch
        first = torch.ones(2)
        class Slow:
            def __repr__(self):
                time.sleep({sleep_s})
                return "slow"
        d = {{Slow(): torch.ones(1) for _ in range(100)}}
    """,
    )
    snap = _same_outcome(runs)
    assert snap["tensors"][0]["name"] == "first" and snap["truncated"] is True
    assert any("time budget" in w for w in snap["warnings"]), snap["warnings"]
    for mode in ("stepped", "changes_only"):
        assert runs[mode]["steps_truncated"] is True
        assert any("time budget" in w for w in runs[mode]["warnings"]), runs[mode]["warnings"]


@pytest.mark.parametrize("dims", [65, 255, 490])
def test_tensors_of_more_than_64_dimensions_are_left_out_with_a_warning(sandbox, dims):
    runs = _runs(sandbox, f"import torch\nsmall = torch.ones(2)\nt = torch.ones([1] * {dims})\n")
    snap = _same_outcome(runs)
    assert [t["name"] for t in snap["tensors"]] == ["small"] and snap["truncated"] is True
    assert f"t: a tensor of {dims} dimensions is not shown; the playground shows up to 64" in snap["warnings"]


ODDITIES = """\
import torch
nt = torch.nested.nested_tensor([torch.ones(2, 3), torch.ones(4, 3)], layout=torch.jagged)
meta = torch.empty(3, 4, device="meta")
huge_meta = torch.empty(2**40, 2**20, device="meta")
coo = torch.sparse_coo_tensor(torch.zeros(2, 0, dtype=torch.long), torch.zeros(0), (2**31, 2**31))
csr = torch.eye(3).to_sparse_csr()
q = torch.quantize_per_tensor(torch.ones(3), 0.1, 0, torch.qint8)
c = torch.tensor([1 + 2j]).conj()
flags = torch.tensor([True, False])
empty = torch.empty(0, 5)
half = torch.ones(2, dtype=torch.bfloat16)
"""


def test_odd_tensors_give_a_result(sandbox):
    snap = _same_outcome(_runs(sandbox, ODDITIES))
    by_name = {t["name"]: t for t in snap["tensors"]}
    assert list(by_name) == ["nt", "meta", "huge_meta", "coo", "csr", "q", "c", "flags", "empty", "half"]
    assert by_name["nt"]["shape"] == [2, -1, 3] and by_name["nt"]["flags"] == ["nested"]
    assert by_name["huge_meta"]["numel"] == 2**60 and by_name["huge_meta"]["preview"] is None
    assert by_name["coo"]["shape"] == [2**31, 2**31] and "sparse" in by_name["coo"]["flags"]
    assert by_name["c"]["preview"]["values"] == ["1-2j"]
    assert by_name["q"]["preview"]["values"] == [1.0, 1.0, 1.0]
    assert by_name["flags"]["preview"]["values"] == [True, False]


def test_names_over_256_characters_are_shortened_and_stay_unique(sandbox):
    runs = _runs(
        sandbox,
        """\
        import torch
        globals()["x" * 300] = torch.ones(1)
        globals()["x" * 299 + "y"] = torch.ones(2)
        class Box:
            pass
        box = Box()
        setattr(box, "a" * 10**6, torch.ones(3))
    """,
    )
    names = [t["name"] for t in _same_outcome(runs)["tensors"]]
    assert len(names) == len(set(names)) == 3 and all(len(n) <= 256 for n in names)
    assert names[0] == "x" * 255 + "…" and names[2].startswith("box.aaa")


def test_a_step_failing_outside_the_observers_is_skipped_not_raised_into_the_snippet(monkeypatch):
    """Regression: a step hook let an exception raised after the observation (where the
    budget's alarm can land too) escape into the snippet, as the snippet's own error."""
    import json

    from app.sandbox import trace
    from app.sandbox.limits import SandboxLimits
    from app.sandbox.runner import run_snippet

    def late_alarm() -> str:
        raise KeyboardInterrupt("between two guards")

    monkeypatch.setattr(trace, "grad_mode", late_alarm)
    res = json.loads(
        run_snippet(
            "import torch\nx = torch.ones(2)\ny = x * 2\n", SandboxLimits(exec_timeout_s=5.0), trace=True
        )
    )
    assert (res["ok"], res["error"], res["steps"]) == (True, None, [])
    assert res["warnings"].count("step skipped: KeyboardInterrupt") == 3
    assert [t["name"] for t in res["snapshot"]["tensors"]] == ["x", "y"]


def test_steps_slow_to_observe_stop_before_they_cost_the_run_its_time(sandbox):
    """Regression: each step read 30 keys whose __repr__ takes 10 ms (0.3 s, under a step's
    budget), so 20 loop iterations of steps outlasted the run's 3 s: TimeLimit, where the plain
    run is fine. The steps, all together, now stop at half of the run's time."""
    runs = _runs(
        sandbox,
        timeout_s=3,
        code="""\
        import time, torch
        class Slow:
            def __repr__(self):
                time.sleep(0.01)
                return "slow"
        d = {Slow(): torch.ones(1) for _ in range(30)}
        for i in range(20):
            x = torch.ones(i + 1)
    """,
    )
    snap = _same_outcome(runs)
    assert len(snap["tensors"]) == 31 and snap["truncated"] is False
    for mode in ("stepped", "changes_only"):
        assert runs[mode]["steps_truncated"] is True
        assert any("of the run's time" in w for w in runs[mode]["warnings"]), runs[mode]["warnings"]
