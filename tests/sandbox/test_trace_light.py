"""Stepping without per-step states (trace {"states": false}, app.inspector.changes): the same
`changes` as the full step-through after every step of every lesson, for a fraction of its cost."""

from __future__ import annotations

import json
import textwrap

import pytest

from app.examples import EXAMPLES
from app.inspector.diff import diff, empty_changes
from app.inspector.observe import StepObserver
from app.sandbox import trace
from app.sandbox.limits import SandboxLimits
from app.sandbox.runner import run_snippet
from bench.trace_overhead import TRAINING_LOOP, snippet

LIMITS = SandboxLimits(exec_timeout_s=30.0)

EDGE_CASES = {
    # a write through one view of a shared storage changes only the views that see it
    "disjoint-views": "import torch\nx = torch.zeros(6)\na = x[:3]\nb = x[3:]\nb.fill_(1)\n",
    # numpy writes move no version counter; from_numpy and .numpy() share the bytes
    "numpy-write": "import torch, numpy as np\narr = np.zeros(4)\nt = torch.from_numpy(arr)\n"
    "arr[1] = 5\nback = t.numpy()\nback[2] = 7\n",
    # .data writes go through a tensor with a version counter of its own
    "data-write": "import torch\nw = torch.ones(3, requires_grad=True)\nw.data.mul_(2)\n",
    # a big tensor: memory sampled, values compared by preview
    "big": "import torch\nbig = torch.zeros(200, 200)\nbig[0, 0] = 1\nbig.add_(1)\nbig[100, 100] = 5\n",
    # empty allocations: each a storage of its own (as group_storages has them), same key
    "empty": "import torch\ne = torch.empty(0)\nf = torch.zeros(0, 3)\ng = e.view(0, 1)\n"
    "h = torch.ones(4)[2:2]\ndel e\ns = torch.ones(2).to_sparse()\n",
    "rebinding": "import torch\nx = torch.ones(3)\nx = x.clone()\nx = x + 1\ny = x\ndel y\n",
    "reshape-in-place": "import torch\nx = torch.ones(2, 3)\nx.t_()\nx.unsqueeze_(0)\n",
    "modules": "import torch\nm = torch.nn.Linear(2, 2)\nm.eval()\nm.extra = torch.nn.Linear(1, 1)\n"
    "opt = torch.optim.SGD(m.parameters(), lr=0.1)\nopt.param_groups[0]['lr'] = 0.5\n",
    "errors": "import torch\nx = torch.ones(2)\ntry:\n    x.view(3)\nexcept RuntimeError:\n"
    "    x.add_(1)\nx.mul_(2)\nx.view(5)\n",
}
CASES = {
    **{e.id: textwrap.dedent(e.code) for e in EXAMPLES},
    **EDGE_CASES,
    "synthetic": snippet(),
    "training-loop": TRAINING_LOOP,
}


def keyed(changes: dict, before_keys: dict[str, str], after_keys: dict[str, str]) -> dict:
    """Full changes with per-snapshot storage ids replaced by their stable keys, as the light
    changes give them."""
    changes = json.loads(json.dumps(changes))
    for section in ("tensors", "arrays"):
        for entry in changes[section]["changed"]:
            if "storage" in entry["fields"]:
                old, new = entry["fields"]["storage"]
                entry["fields"]["storage"] = [before_keys.get(old), after_keys.get(new)]
    changes["storages"]["added"] = [after_keys[s] for s in changes["storages"]["added"]]
    for freed in changes["storages"]["freed"]:
        freed["id"] = before_keys[freed["id"]]
    return changes


def side_by_side(code: str, monkeypatch) -> list[tuple[dict, dict]]:
    """(full changes, light changes) after every step of one light run: a StepObserver watches
    the same namespace at the same moments (two runs would not do: the allocator reuses
    addresses differently in each, and storage keys follow addresses)."""
    pairs: list[tuple[dict, dict]] = []
    light_observe = trace.Tracer._observe

    def both(self):
        changes, keys, state = light_observe(self)
        full, prev = self.__dict__.setdefault("_full", [StepObserver(), (None, {})])
        obs = full.observe(self.namespace)
        if obs.changed:
            expected = keyed(
                diff(prev[0], obs.snapshot, storage_keys_before=prev[1], storage_keys_after=obs.storage_keys),
                prev[1],
                obs.storage_keys,
            )
            self._full[1] = (obs.snapshot, obs.storage_keys)
        else:
            expected = empty_changes()
        pairs.append((expected, json.loads(json.dumps(changes))))
        return changes, keys, state

    monkeypatch.setattr(trace.Tracer, "_observe", both)
    payload = json.loads(run_snippet(code, LIMITS, trace={"states": False}))
    assert payload["steps"] and all(s["state"] is None for s in payload["steps"])
    assert len(pairs) == len(payload["steps"]) and not payload["warnings"], payload["warnings"]
    return pairs


@pytest.mark.parametrize("case", sorted(CASES))
def test_light_steps_change_what_full_steps_change(case, monkeypatch):
    for index, (full, light) in enumerate(side_by_side(CASES[case], monkeypatch)):
        assert full == light, (case, index)


@pytest.mark.parametrize("case", ["inplace", "training-loop", "errors", "numpy-write"])
def test_light_steps_are_the_same_steps(case):
    def steps(states: bool) -> list[dict]:
        payload = json.loads(run_snippet(CASES[case], LIMITS, trace={"states": states}))
        keep = ("index", "kind", "start_line", "end_line", "iteration", "grad_mode", "stdout", "note")
        return [{k: s[k] for k in keep} for s in payload["steps"]]

    assert steps(False) == steps(True)


def test_light_run_ends_with_the_same_snapshot():
    code = CASES["synthetic"]
    full = json.loads(run_snippet(code, LIMITS, trace=True))
    light = json.loads(run_snippet(code, LIMITS, trace={"states": False}))
    assert light["snapshot"] == full["snapshot"]


def test_light_steps_are_much_smaller():
    code = CASES["training-loop"]
    full = len(run_snippet(code, LIMITS, trace=True))
    light = len(run_snippet(code, LIMITS, trace={"states": False}))
    assert light * 3 < full
