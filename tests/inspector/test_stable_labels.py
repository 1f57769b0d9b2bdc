"""A traced run's storage ids follow memory (issue #15): a storage keeps its id ("s3") in every
step's state and in the final snapshot for as long as its memory lives, and an id once freed
is not given to other memory in the same run."""

from __future__ import annotations

import json

import pytest

from app.inspector.diff import apply_state
from app.inspector.labels import StorageLabeller
from app.inspector.observe import StepObserver
from app.sandbox.limits import SandboxLimits
from app.sandbox.runner import run_snippet

LIMITS = SandboxLimits(exec_timeout_s=30.0)
# bn's storages are found after a's, then b, x and y come and a goes: in discovery order
# bn.weight's storage read s1, s2, s1... from step to step.
BN = """\
import torch
import torch.nn as nn
torch.manual_seed(0)
a = torch.zeros(4)
bn = nn.BatchNorm1d(3)
b = torch.ones(2)
del a
x = torch.randn(5, 3)
y = bn(x)
c = torch.zeros(4)
del b
z = x.t()
"""


def _states(payload: dict) -> list[dict]:
    """The state after each step, folded from the deltas (as the page's timeline does)."""
    states, state = [], None
    for step in payload["steps"]:
        if step["state"] is not None:
            state = apply_state(state, step["state"])
        states.append(state or {"tensors": [], "storages": []})
    return states


def _ids(snap: dict) -> dict[str, str]:
    return {t["name"]: t["storage"] for t in snap["tensors"]}


def test_a_storage_keeps_its_id_in_every_step_and_the_final_snapshot():
    payload = json.loads(run_snippet(BN, LIMITS, trace=True))
    seen: dict[str, str] = {}  # tensor name -> its storage id, the first time it was seen
    for n, state in enumerate([*_states(payload), payload["snapshot"]]):
        for name, sid in _ids(state).items():
            assert seen.setdefault(name, sid) == sid, (n, name)
        assert len({s["id"] for s in state["storages"]}) == len(state["storages"])  # unique
    assert seen["bn.weight"] != seen["bn.bias"]
    assert seen["z"] == seen["x"]  # a view: the same memory, the same id
    final = payload["snapshot"]
    assert {s["id"] for s in final["storages"]} == set(_ids(final).values())


def test_an_id_once_freed_is_not_given_to_other_memory():
    payload = json.loads(run_snippet(BN, LIMITS, trace=True))
    states = [*_states(payload), payload["snapshot"]]
    alive = [{s["id"] for s in state["storages"]} for state in states]
    for n in range(1, len(alive)):
        gone = set().union(*alive[:n]) - alive[n - 1]  # seen before the last state, not in it
        assert not gone & alive[n], n
    # `c = torch.zeros(4)` may well sit at a's freed address: still another storage
    # (tests/inspector/test_labels.py gives new memory a's very address)
    a_ids = {_ids(state).get("a") for state in states} - {None}
    assert a_ids and _ids(payload["snapshot"])["c"] not in a_ids


def test_a_light_run_ends_with_the_ids_a_full_run_ends_with():
    full = json.loads(run_snippet(BN, LIMITS, trace=True))
    light = json.loads(run_snippet(BN, LIMITS, trace={"states": False}))
    assert light["snapshot"] == full["snapshot"]


def test_an_untraced_run_keeps_discovery_order():
    snap = json.loads(run_snippet(BN, LIMITS))["snapshot"]
    assert [s["id"] for s in snap["storages"]] == [f"s{n}" for n in range(len(snap["storages"]))]


@pytest.mark.parametrize("stable", [False, True])
def test_step_keys_are_the_stable_ids_numbers(stable):
    """storage_keys map each id to its key; with the run's labeller that is the same number."""
    ns: dict = {}
    observer = StepObserver(labeller=StorageLabeller() if stable else None)
    exec("import torch\nold = torch.ones(3)\nx = torch.zeros(2)", ns)
    observer.observe(ns)
    exec("del old\nw = torch.ones(5)", ns)
    obs = observer.observe(ns)
    ids = [s["id"] for s in obs.snapshot["storages"]]
    assert ids == (["s1", "s2"] if stable else ["s0", "s1"])
    assert [obs.storage_keys[i] for i in ids] == ["m1", "m2"]


def test_memory_reallocated_at_a_freed_address_gets_a_new_label_whatever_the_allocator_does():
    """Regression: labels followed addresses, so `loss = ...` in a loop kept loss's label when
    the allocator put the new tensor where the old one was, and took a new one when it did not;
    two runs of the same code (precompiled or not) then disagreed on every later id."""
    import torch

    from app.inspector.labels import StorageLabeller
    from app.inspector.storages import Extent, tensor_extent

    def extent(name: str, t: torch.Tensor) -> Extent:
        e = tensor_extent(0, name, t)
        assert e is not None
        return e

    labeller = StorageLabeller()
    a = torch.ones(4)
    first = labeller.renew([extent("a", a)])
    view = a[1:]
    same = labeller.renew([extent("view", view)])  # a's memory, through a view
    assert list(same.values()) == list(first.values())
    old = extent("view", view)
    del a, view  # the memory is freed; a new extent at the very address stands for new memory
    assert old.owner() is None
    assert list(labeller.renew([old]).values()) != list(first.values())
