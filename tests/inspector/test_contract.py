"""The snapshot must validate against the web layer's schema (app/schemas.py).

app/convert.py turns a payload that fails validation into a Crash for the
whole run, so one off-type field (say a null in a shape) would hide every
tensor. The inspector itself never imports pydantic; only this test does.
"""

from __future__ import annotations

import json

import pytest
import torch

from app.inspector import snapshot
from app.schemas import RunResponse

from .helpers import run_snippet
from .test_golden import LESSONS
from .test_tensors import UNUSUAL


def validate(snap: dict) -> RunResponse:
    payload = json.loads(json.dumps(snap, allow_nan=False))
    response = RunResponse.model_validate({"ok": True, **payload})
    assert len(response.tensors) == len(snap["tensors"])
    return response


@pytest.mark.parametrize("lesson", sorted(LESSONS))
def test_lessons_validate(lesson):
    ns, _ = run_snippet(LESSONS[lesson])
    validate(snapshot(ns))


def test_unusual_tensors_validate():
    validate(snapshot({key: make() for key, (make, _) in UNUSUAL.items()}))


def test_modules_optimizers_lazy_and_graph_states_validate():
    ns, exc = run_snippet("""
        model = nn.Sequential(nn.Linear(2, 2), nn.LazyLinear(1))
        out = model(torch.ones(1, 2))
        lazy = nn.LazyLinear(3)
        opt = torch.optim.Adam(model.parameters())
        out.sum().backward()
        opt.step()
        x = torch.ones(3, requires_grad=True)
        y = x * 2
        z = y * y
        y.add_(1)
    """)
    assert exc is None
    response = validate(snapshot(ns))
    assert {m.kind for m in response.modules} == {"module", "optimizer"}
    assert any(s.stale for n in response.graph.nodes for s in n.saved)


def test_uninspectable_fallback_entry_validates(monkeypatch):
    def broken(t):
        raise RuntimeError("no")

    monkeypatch.setattr("app.inspector.tensors._layout_fields", broken)
    response = validate(snapshot({"b": torch.ones(1)}))
    assert response.tensors[0].flags == ["uninspectable"]


def test_a_subclass_whose_torch_function_raises_is_described_in_full():
    """Regression: the inspector's reads went through the subclass's __torch_function__, which
    raised, and the tensor became an "uninspectable" stub."""

    class Broken(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            raise KeyboardInterrupt("no")

    response = validate(snapshot({"b": torch.arange(3.0).as_subclass(Broken)}))
    entry = response.tensors[0]
    assert (entry.flags, entry.shape, entry.stride) == ([], [3], [1])
    assert entry.preview is not None and entry.stats is not None
    assert entry.preview.values == [0.0, 1.0, 2.0] and entry.stats.max == 2.0


# ---- one contract: every key on both sides ------------------------------------------------------
# A snippet that reaches every optional key the worker side can emit: views, numpy sharing, a
# lazy module, buffers and an unregistered tensor, Adam's state (0-d step and moment tensors),
# stale and freed saved tensors, a caught error, output, a loop past its stepped iterations, a
# freed storage, a storage a view pins (the memory ledger's pinned); ERROR_SNIPPET ends in an
# error inside a function (frames, an "error" step).
COVERING = """\
import numpy as np
import torch
from torch import nn
torch.manual_seed(0)
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.register_buffer("scale", torch.ones(2))
        self.extra = torch.zeros(1)
    def forward(self, x):
        return self.lin(x) * self.scale
net = Net()
alias = net
lazy = nn.LazyLinear(2)
opt = torch.optim.Adam(net.parameters(), lr=0.1)
x = torch.randn(4, 3, requires_grad=True)
v = x.t()
a = np.arange(6.0).reshape(2, 3)
av = a[:, 1:]
t = torch.from_numpy(a)
w = torch.tensor([float("nan"), 1.0, float("inf")])
y = x * 2
z = (y * y).sum()
y.add_(1)
h = torch.ones(2, requires_grad=True)
k = (h * h).sum()
k.backward()
for i in range(4):
    loss = net(x.detach()).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
print(loss.item())
try:
    x.view(5)
except RuntimeError:
    pass
del v
big = torch.zeros(64)
head = big[:4]
del big
"""
ERROR_SNIPPET = "import torch\nx = torch.ones(2)\ndef f(n):\n    return x / n[0]\nf(None)\n"
# Public fields the server fills in itself (app.convert), never from the worker's payload: the wall
# time it measured, and the seed it sent (a forged "seed" would pass a snippet's numbers off as
# another seed's).
SERVER_ONLY = {"RunResponse.wall_ms", "RunResponse.seed"}


def _payloads() -> list[dict]:
    """Real worker payloads (app.sandbox.runner, in process), plain and stepped both ways, and the
    sandbox's own verdicts (app.sandbox.outcome: a crash by signal and by exit code)."""
    from app.sandbox.limits import SandboxLimits
    from app.sandbox.outcome import RunOutcome
    from app.sandbox.runner import run_snippet

    limits = SandboxLimits(exec_timeout_s=30.0)
    traces = (None, {"states": True, "loop_iterations_max": 2}, {"states": False})
    payloads = [
        json.loads(run_snippet(code, limits, trace=t)) for code in (COVERING, ERROR_SNIPPET) for t in traces
    ]
    for signal, exit_code in (("SIGSEGV", None), (None, 3)):
        outcome = RunOutcome("crash", b"", signal, exit_code, wall_ms=1.0, queue_ms=0.0)
        payloads.append(outcome.result())
    return payloads


def _cut_module() -> dict:
    """A module entry cut at its list cap, the only way its `truncated` key is sent."""
    from app.inspector import modules

    ns, _ = run_snippet("model = nn.Sequential(nn.Linear(1, 1), nn.ReLU())")
    original = modules.ITEMS_MAX
    modules.ITEMS_MAX = 1
    try:
        return next(m for m in snapshot(ns)["modules"] if m["name"] == "model")
    finally:
        modules.ITEMS_MAX = original


@pytest.fixture(scope="module")
def audit():
    from app.convert import SNAPSHOT_KEYS, _flatten
    from app.schemas import ModuleInfo
    from tests.contract_walk import KeyAudit

    audit = KeyAudit()
    for payload in _payloads():
        snap = payload.get("snapshot") or {}
        # _flatten keeps only SNAPSHOT_KEYS (and the warnings) of the snapshot: others vanish.
        audit.dropped |= {f"snapshot.{k}" for k in snap if k not in (*SNAPSHOT_KEYS, "warnings")}
        flat = _flatten(payload)
        audit.walk(flat, RunResponse.model_validate(flat))
    cut = _cut_module()
    assert cut.get("truncated") is True
    audit.walk(cut, ModuleInfo.model_validate(cut))
    return audit


def test_every_key_the_worker_sends_has_a_public_field(audit):
    """Regression: a key the worker sent but the schema did not declare was dropped without an
    error (extra="ignore"), as module aliases were."""
    if audit.dropped:
        pytest.fail(f"sent by the worker, dropped by the schema: {sorted(audit.dropped)}")


def test_every_public_field_is_sent_by_the_worker(audit):
    missing = audit.never_sent(RunResponse) - SERVER_ONLY
    if missing:
        pytest.fail(f"declared by the schema, never sent by the worker: {sorted(missing)}")


def test_the_tensor_entry_keys_are_the_schema_fields_in_one_list():
    """app.inspector.tensors.TENSOR_KEYS is the one list: the fallback entry, a described
    tensor (same order: the golden files depend on it), TensorInfo and the step's change fields."""
    from app.inspector.diff import ARRAY_FIELDS, MODULE_FIELDS, TENSOR_FIELDS
    from app.inspector.tensors import CHANGE_FIELDS, TENSOR_KEYS, minimal_tensor
    from app.inspector.walk import Found
    from app.schemas import ArrayInfo, ModuleInfo, TensorInfo
    from tests.contract_walk import wire_keys

    public = set(wire_keys(TensorInfo))
    assert not set(TENSOR_KEYS) - public, f"not in TensorInfo: {set(TENSOR_KEYS) - public}"
    assert not public - set(TENSOR_KEYS), f"not in TENSOR_KEYS: {public - set(TENSOR_KEYS)}"
    assert tuple(minimal_tensor(Found(torch.ones(1), "x"))) == TENSOR_KEYS
    assert tuple(snapshot({"x": torch.ones(1)})["tensors"][0]) == TENSOR_KEYS
    assert TENSOR_FIELDS is CHANGE_FIELDS and set(CHANGE_FIELDS) <= set(TENSOR_KEYS)
    assert set(ARRAY_FIELDS) <= set(wire_keys(ArrayInfo))
    assert set(MODULE_FIELDS) <= set(wire_keys(ModuleInfo))
