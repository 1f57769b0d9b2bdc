"""app.inspector.diff: what changed between two snapshots, and the step-state deltas."""

from __future__ import annotations

import pytest
import torch

from app.examples import EXAMPLES
from app.inspector import snapshot
from app.inspector.diff import apply_state, diff, empty_changes, is_empty, state_delta
from tests.inspector.helpers import run_snippet


def _snap(code: str) -> dict:
    ns, err = run_snippet(code)
    assert err is None, err
    return snapshot(ns)


def test_same_snapshot_is_empty():
    s = _snap("x = torch.ones(2)")
    changes = diff(s, s)
    assert changes["empty"] is True
    assert changes == {**empty_changes(), "empty": True}


def test_first_step_adds_everything():
    after = _snap("x = torch.ones(2)\ny = x.view(2, 1)")
    changes = diff(None, after)
    assert changes["tensors"]["added"] == ["x", "y"]
    assert changes["storages"]["added"] == ["s0"]
    assert not is_empty(changes)


def test_inplace_op_is_a_version_bump_with_new_values():
    before = _snap("x = torch.ones(2, 3)")
    after = _snap("x = torch.ones(2, 3)\nx.add_(1)")
    (change,) = diff(before, after)["tensors"]["changed"]
    assert change["name"] == "x"
    assert change["fields"] == {"version": [0, 1]}
    assert change["values_changed"] is True


def test_transpose_in_place_changes_shape_stride_and_contiguity():
    before = _snap("x = torch.ones(2, 3)")
    after = _snap("x = torch.ones(2, 3)\nx.t_()")
    fields = diff(before, after)["tensors"]["changed"][0]["fields"]
    assert fields["shape"] == [[2, 3], [3, 2]]
    assert fields["stride"] == [[3, 1], [1, 3]]
    assert fields["is_contiguous"] == [True, False]


def test_grad_appears_then_becomes_none():
    code = "w = torch.ones(2, requires_grad=True)\n(w * 3).sum().backward()"
    no_grad, with_grad = _snap("w = torch.ones(2, requires_grad=True)"), _snap(code)
    changes = diff(no_grad, with_grad)
    assert changes["tensors"]["added"] == ["w.grad"]
    assert changes["tensors"]["changed"][0]["fields"]["grad"] == [None, "w.grad"]
    cleared = _snap(code + "\nw.grad = None")
    back = diff(with_grad, cleared)
    assert back["tensors"]["removed"] == ["w.grad"]
    assert back["tensors"]["changed"][0]["fields"]["grad"] == ["w.grad", None]


def test_storage_keys_see_a_rebinding_to_new_memory():
    """x = x.contiguous() keeps the name x; only allocation keys reveal the new storage."""
    before = _snap("x = torch.ones(2, 3).t()")
    after = _snap("x = torch.ones(2, 3).t().contiguous()")
    by_names = diff(before, after)
    assert by_names["storages"]["added"] == []  # members' names cannot tell
    keyed = diff(before, after, storage_keys_before={"s0": "m1"}, storage_keys_after={"s0": "m2"})
    assert keyed["storages"]["added"] == ["s0"]
    assert keyed["storages"]["freed"] == [{"id": "s0", "members": ["x"]}]
    assert keyed["tensors"]["changed"][0]["fields"]["storage"] == ["s0", "s0"]


def test_freed_storage_lists_its_members():
    before = _snap("a = torch.ones(3)\nb = torch.zeros(3)")
    after = _snap("b = torch.zeros(3)")
    changes = diff(before, after)
    assert changes["tensors"]["removed"] == ["a"]
    assert changes["storages"]["freed"] == [{"id": "s0", "members": ["a"]}]


def test_graph_nodes_added_are_matched_as_a_multiset():
    before = _snap("x = torch.ones(2, requires_grad=True)\ny = x * 2")
    after = _snap("x = torch.ones(2, requires_grad=True)\ny = x * 2\nz = y * 3")
    added = diff(before, after)["graph"]["added"]
    assert [n["name"] for n in added] == ["MulBackward0"]
    assert diff(after, before)["graph"]["removed"] == 1


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.id)
def test_state_delta_round_trips_every_prefix_of_every_example(example):
    lines = example.code.splitlines()
    before = None
    for n in range(1, len(lines) + 1):
        ns, err = run_snippet("\n".join(lines[:n]))
        if err is not None:  # a cut in the middle of a block, or the lesson's error
            continue
        after = snapshot(ns)
        rebuilt = apply_state(before, state_delta(before, after))
        # (a step carries the memory ledger's totals as its own `memory`, not in its state)
        assert rebuilt == {k: v for k, v in after.items() if k not in ("warnings", "memory")}
        before = after


def test_unchanged_sections_are_not_resent():
    s = _snap("x = torch.ones(2)")
    delta = state_delta(s, s)
    assert delta == {
        "tensors": {"keys": None, "set": []},
        "arrays": {"keys": None, "set": []},
        "storages": {"keys": None, "set": []},
        "modules": {"keys": None, "set": []},
    }
    assert torch.is_grad_enabled()  # the inspector's no_grad did not leak


def test_identity_fast_paths_answer_as_the_full_comparison():
    """The observer hands unchanged entries over as the same objects; diff and state_delta then
    skip the comparisons, and must answer exactly what comparing copies answers."""
    import copy

    before = _snap("x = torch.ones(2)\nw = torch.ones(2, requires_grad=True)\ny = w * 2")
    after = dict(before, tensors=list(before["tensors"]), storages=before["storages"])
    copied = copy.deepcopy(after)
    keys = {"s0": "m1", "s1": "m2", "s2": "m3"}
    kwargs = {"storage_keys_before": keys, "storage_keys_after": dict(keys)}
    assert diff(before, after, **kwargs) == diff(before, copied, **kwargs)
    # the same storage list under new keys (new memory) is still a storage change
    moved = {"storage_keys_before": keys, "storage_keys_after": dict(keys, s1="m9")}
    assert diff(before, after, **moved)["storages"] == diff(before, copied, **moved)["storages"]
    assert diff(before, after, **moved)["storages"]["added"] == ["s1"]
    assert state_delta(before, after) == state_delta(before, copied)
    assert diff(before, after)["empty"] is True


def test_a_second_name_is_a_change_of_aliases():
    """`b = a` makes no tensor; before, that step showed nothing changed at all."""
    before = _snap("a = torch.ones(2)\nn = a.numpy()")
    after = _snap("a = torch.ones(2)\nn = a.numpy()\nb = a\nm = n")
    changes = diff(before, after)
    assert changes["tensors"]["changed"] == [
        {"name": "a", "fields": {"aliases": [[], ["b"]]}, "values_changed": False}
    ]
    assert changes["arrays"]["changed"] == [
        {"name": "n", "fields": {"aliases": [[], ["m"]]}, "values_changed": False}
    ]
    assert changes["tensors"]["added"] == [] and not changes["empty"]
    assert diff(after, before)["tensors"]["changed"][0]["fields"] == {"aliases": [["b"], []]}
