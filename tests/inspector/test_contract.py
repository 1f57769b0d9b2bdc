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
    assert entry.preview.values == [0.0, 1.0, 2.0] and entry.stats.max == 2.0
