"""Memory over the steps: a traced run's steps carry the ledger's totals (issue #18).

The step observers compute the ledger from what they grouped anyway (app.inspector.observe,
app.inspector.changes); the tracer puts its totals on every observed step, in each mode: full
states, light changes, and the one step an outline run observes (state_at).
"""

from __future__ import annotations

import json

import pytest

from app.sandbox.limits import SandboxLimits
from app.sandbox.runner import run_snippet
from app.schema_memory import MemoryTotals

LIMITS = SandboxLimits(exec_timeout_s=30.0)
TRAINING = """\
import torch
from torch import nn
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
opt = torch.optim.Adam(model.parameters())
x = torch.randn(32, 8)
loss = model(x).pow(2).mean()
loss.backward()
opt.step()
opt.zero_grad()
"""
# Parameters: 8*16 + 16 + 16*1 + 1 = 161 floats.
PARAMS_BYTES = 161 * 4


def _memory_by_line(trace) -> dict[int, dict]:
    payload = json.loads(run_snippet(TRAINING, LIMITS, trace=trace))
    assert payload["ok"], payload.get("error")
    steps = payload["steps"]
    for step in steps:
        if step["memory"] is not None:
            MemoryTotals.model_validate(step["memory"])  # the categories sum to the total
    return {s["start_line"]: s["memory"]["by_category"] for s in steps if s["memory"] is not None}


@pytest.mark.parametrize("trace", [{"states": True}, {"states": False}], ids=["states", "light"])
def test_a_training_step_over_the_steps(trace):
    by_line = _memory_by_line(trace)
    forward, backward, step, zero = by_line[7], by_line[8], by_line[9], by_line[10]
    assert by_line[5]["parameters"] == PARAMS_BYTES and by_line[5]["optimizer_state"] == 0
    assert forward["saved_for_backward"] > 0 and forward["gradients"] == 0
    assert backward["saved_for_backward"] == 0 and backward["gradients"] == PARAMS_BYTES
    assert backward["optimizer_state"] == 0
    # Adam: exp_avg and exp_avg_sq per parameter, and a 4 B step counter for each of the 4
    assert step["optimizer_state"] == 2 * PARAMS_BYTES + 4 * 4
    assert zero["gradients"] == 0 and zero["optimizer_state"] == step["optimizer_state"]


def test_the_light_and_the_full_modes_agree_step_by_step():
    assert _memory_by_line({"states": False}) == _memory_by_line({"states": True})


def test_an_outline_run_carries_memory_on_the_step_it_observes():
    outline = json.loads(run_snippet(TRAINING, LIMITS, trace={"outline": True, "state_at": 6}))
    carried = [s["index"] for s in outline["steps"] if s.get("memory") is not None]
    assert 6 in carried and set(carried) <= {5, 6}
    full = json.loads(run_snippet(TRAINING, LIMITS, trace={"states": True}))
    assert outline["steps"][6]["memory"] == full["steps"][6]["memory"]


def test_the_final_snapshot_of_a_traced_run_has_the_whole_ledger():
    payload = json.loads(run_snippet(TRAINING, LIMITS, trace={"states": True}))
    memory = payload["snapshot"]["memory"]
    assert memory["by_category"] == payload["steps"][-1]["memory"]["by_category"]
    assert {"pinned", "pinned_bytes", "by_device"} <= set(memory)
