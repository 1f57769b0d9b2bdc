"""app.web.states: the state after each step, folded from typed deltas, is the inspector's
(app.inspector.diff.apply_state over the worker's raw deltas), and a forged delta cannot make a
state with repeated names."""

from __future__ import annotations

import json

import pytest

from app.convert import _flatten
from app.schemas import RunResponse
from app.web import timeline
from app.web.states import State, fold

CODE = """\
import torch
import numpy as np
a = torch.arange(6.).reshape(2, 3)
b = a.t()
w = torch.ones(3, requires_grad=True)
y = (w * 2).sum()
y.backward()
n = a.numpy()
del b
model = torch.nn.Linear(2, 2)
model.eval()
c = a.contiguous()
print(c.shape)
"""


@pytest.fixture(scope="module")
def raw() -> dict:
    from app.sandbox.limits import SandboxLimits
    from app.sandbox.runner import run_snippet

    data = json.loads(run_snippet(CODE, SandboxLimits(exec_timeout_s=30.0), trace={"states": True}))
    assert data["ok"], data["error"]
    return _flatten(data)


def test_folded_states_are_the_inspectors_apply_state(raw):
    from app.inspector.diff import apply_state

    resp = RunResponse.model_validate(raw)
    state: dict = {}
    seen: set[str] = set()
    for step, typed in zip(raw["steps"], fold(resp.steps), strict=True):
        if step["state"] is not None:
            state = apply_state(state, step["state"])
        view = _dumped(typed)
        for section in ("tensors", "arrays", "storages", "modules"):
            want = state[section]
            assert [e["name" if section != "storages" else "id"] for e in view[section]] == [
                e["name" if section != "storages" else "id"] for e in want
            ]
            # every field the worker sent, as it sent it (the view adds the schema's defaults)
            assert [{k: e[k] for k in w} for e, w in zip(view[section], want, strict=False)] == want
            seen |= {section} if want else set()
        assert (
            view["graph"]
            == RunResponse.model_validate({"ok": True, "graph": state["graph"]}).graph.model_dump()
        )
        assert view["truncated"] == state["truncated"]
    assert seen == {"tensors", "arrays", "storages", "modules"}


def test_state_at_is_the_state_after_that_step_without_validating_again(raw, monkeypatch):
    resp = RunResponse.model_validate(raw)
    monkeypatch.setattr(
        RunResponse, "model_validate", classmethod(lambda cls, *a, **k: pytest.fail("validated again"))
    )
    at = timeline.state_at(resp, 3)
    assert [t.name for t in at.tensors] == [t.name for t in fold(resp.steps)[3].tensors]
    assert at.stdout.text == "".join(s.stdout for s in resp.steps[:4]) and at.ok


def test_a_forged_delta_with_repeated_keys_gives_each_name_once():
    x = {"name": "x", "shape": [1], "dtype": "torch.float32", "device": "cpu"}
    resp = RunResponse.model_validate(
        {
            "ok": True,
            "steps": [
                {
                    "index": 0,
                    "start_line": 1,
                    "end_line": 1,
                    "state": {"tensors": {"keys": ["x", "x", "gone", "x"], "set": [x]}},
                },
                {"index": 1, "start_line": 2, "end_line": 2, "state": {"tensors": {"keys": None}}},
            ],
        }
    )
    first, second = fold(resp.steps)
    assert [t.name for t in first.tensors] == ["x"] and second.tensors is first.tensors


def _dumped(state: State) -> dict:
    """A folded state's sections as the plain dicts the worker sent (with the schema's defaults)."""
    keyed = {
        name: [e.model_dump(by_alias=True) for e in getattr(state, name)]
        for name in ("tensors", "arrays", "storages", "modules")
    }
    return keyed | {"graph": state.graph.model_dump(), "truncated": state.truncated}
