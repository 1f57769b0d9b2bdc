"""Outline runs (trace {"outline": true}, app.sandbox.trace_outline): the very steps of a traced
run with nothing observed at them, a plain run's final snapshot, and with state_at=k the one
step k carrying the state the full-states run folds to at k and the light mode's changes."""

from __future__ import annotations

import json
import random
import textwrap
from typing import Any

import numpy as np
import pytest
import torch

from app.convert import _flatten
from app.examples import EXAMPLES
from app.inspector.diff import empty_changes
from app.sandbox import trace
from app.sandbox.limits import SandboxLimits, TimeLimit
from app.sandbox.runner import run_snippet
from app.schemas import RunResponse, Step
from app.web.states import State, fold
from bench.trace_overhead import TRAINING_LOOP

LIMITS = SandboxLimits(exec_timeout_s=30.0)
LESSONS = {e.id: textwrap.dedent(e.code) for e in EXAMPLES}
CASES = {**LESSONS, "training-loop": TRAINING_LOOP}
STEP_FIELDS = ("index", "kind", "start_line", "end_line", "iteration", "grad_mode", "stdout", "note")
TIMING = ("duration_ms",)


def run(code: str, trace) -> dict:
    """One in-process run, seeded alike each time: two runs of a lesson that draws random numbers
    must show the same values to be compared."""
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    return json.loads(run_snippet(code, LIMITS, trace=trace))


def placed(step: dict) -> dict:
    """A step's place on the wire, the public schema's defaults where the step leaves a field out
    (an outline step does: app.sandbox.trace_outline.outline_step)."""
    return {k: step[k] if k in step else Step.model_fields[k].get_default() for k in STEP_FIELDS}


def steps_of(payload: dict) -> list:
    return RunResponse.model_validate(_flatten(payload)).steps


def canonical_state(state: State) -> dict:
    """A folded state, dumped, with storage ids renamed s0, s1, ... in the order of its storages:
    two runs number memory each in its own way (see app.sandbox.trace_outline)."""
    names = {s.id: f"s{i}" for i, s in enumerate(state.storages)}
    out: dict[str, Any] = {}
    for section in ("tensors", "arrays", "storages", "modules"):
        out[section] = [e.model_dump() for e in getattr(state, section)]
    for entry in out["tensors"] + out["arrays"]:
        entry["storage"] = names.get(entry["storage"], entry["storage"])
    for entry in out["storages"]:
        entry["id"] = names[entry["id"]]
    out["graph"], out["truncated"] = state.graph.model_dump(), state.truncated
    return out


def canonical_changes(changes: dict) -> dict:
    """Light changes with storage keys renamed k0, k1, ... in the order they are met."""
    names: dict[str, str] = {}

    def rn(key):
        return None if key is None else names.setdefault(key, f"k{len(names)}")

    out = json.loads(json.dumps(changes))
    out["storages"]["added"] = [rn(k) for k in out["storages"]["added"]]
    for freed in out["storages"]["freed"]:
        freed["id"] = rn(freed["id"])
    for section in ("tensors", "arrays"):
        for entry in out[section]["changed"]:
            if "storage" in entry["fields"]:
                entry["fields"]["storage"] = [rn(k) for k in entry["fields"]["storage"]]
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_outline_steps_are_the_full_runs_steps_with_nothing_observed(case):
    """Read as the server reads them (the public schema fills in what an outline step leaves
    out), they are the full run's steps with nothing observed."""
    full = run(CASES[case], {"states": True})
    outline = run(CASES[case], {"outline": True})
    assert [s.model_dump(include=set(STEP_FIELDS)) for s in steps_of(outline)] == [
        s.model_dump(include=set(STEP_FIELDS)) for s in steps_of(full)
    ]
    assert outline["steps_truncated"] == full["steps_truncated"]
    assert all(s.state is None and s.storage_keys == {} and s.memory is None for s in steps_of(outline))
    assert all(s.changes.empty for s in steps_of(outline))
    assert outline["warnings"] == full["warnings"]


def test_an_outline_step_on_the_wire_is_its_place_and_what_differs_from_the_defaults():
    """Regression: every outline step carried an empty `changes` tree, `storage_keys`, `state`
    and `memory`, and the defaults of the rest: 85% of a lesson outline's bytes."""
    steps = run("x = 1\nfor i in range(2):\n    print(i)", {"outline": True})["steps"]
    assert steps[0] == {"index": 0, "start_line": 1, "end_line": 1}
    assert steps[2] == {"index": 2, "start_line": 2, "end_line": 3, "kind": "iteration", "iteration": 1}
    assert steps[1]["stdout"] == "0\n" and steps[1]["iteration"] == 1


def _picks() -> list[tuple[str, int]]:
    """(case, k): first, middle and last steps of a few lessons; an error step, a caught step,
    loop iterations' steps."""
    picks = []
    for case, count in (("numpy-sharing", 8), ("state-dict", 14), ("train-step", 13)):
        picks += [(case, 0), (case, count // 2), (case, count - 1)]
    picks += [("view-non-contiguous", 4), ("stale-saved", 4)]  # their last steps are "error"
    picks += [("detach-vs-data", k) for k in range(11)]  # one of them "caught"
    picks += [("grad-accumulation", k) for k in (3, 5, 9, 10, 12)]  # 5, 9, 10: iterations
    picks += [("training-loop", k) for k in (0, 8, 14, 20, 30, 40)]  # 14, 30: iterations
    return picks


@pytest.mark.parametrize(("case", "k"), _picks())
def test_one_steps_state_is_the_full_runs_state_at_that_step(case, k):
    code = CASES[case]
    full = run(code, {"states": True})
    full_steps = steps_of(full)
    light = run(code, {"states": False})
    payload = run(code, {"outline": True, "state_at": k})
    steps = steps_of(payload)
    # (The warnings say why, should a cap or the steps' time budget have cut a run short.)
    assert len(steps) == len(full_steps) > k, (payload["warnings"], full["warnings"])
    assert [s.index for s in steps if s.state is not None] == [k], payload["warnings"]
    assert canonical_state(fold(steps)[k]) == canonical_state(fold(full_steps)[k])
    raw = payload["steps"][k]
    assert canonical_changes(raw["changes"]) == canonical_changes(light["steps"][k]["changes"])
    # Its storage keys name its state's storages, as the full run's do.
    assert sorted(raw["storage_keys"]) == sorted(s.id for s in fold(steps)[k].storages)
    assert all(key == "m" + sid[1:] for sid, key in raw["storage_keys"].items())


def test_the_kinds_picked_are_there():
    """The picks above cover an error step, a caught step and loop iterations (a lesson's edit
    must not quietly drop one of them from the test)."""
    kinds = {(case, steps_of(run(CASES[case], {"outline": True}))[k].kind) for case, k in _picks()}
    assert {"error", "caught", "iteration"} <= {kind for _, kind in kinds}


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_outline_run_ends_with_a_plain_runs_snapshot(case):
    plain = run(CASES[case], None)
    for options in ({"outline": True}, {"outline": True, "state_at": 2}):
        assert comparable(run(CASES[case], options)) == comparable(plain)


def comparable(payload: dict) -> dict:
    """A payload without its steps, its timing and its module calls: a traced run names the step
    of each call, so calls a plain run folds into one (count 2) stay apart (app.inspector.calls)."""
    out = {k: v for k, v in payload.items() if k not in ("steps", "steps_truncated", *TIMING)}
    if out["snapshot"] is not None:
        out["snapshot"] = {k: v for k, v in out["snapshot"].items() if k != "calls"}
    return out


STORAGE_IDS = """\
import torch
a = torch.ones(3)
b = torch.zeros(2)
c = a[1:]
del a, c
d = torch.ones(4)
"""


def test_a_steps_storage_ids_are_the_final_snapshots():
    """Regression: step k was labelled from its own first look (a -> s0, b -> s1) while the final
    snapshot, a plain run's, names b s0: the page showed two ids for b's memory and one id for
    two memories. Memory alive at the end takes its final id; memory gone, an id the end has not."""
    payload = run(STORAGE_IDS, {"outline": True, "state_at": 3})
    final = {s["members"][0]["name"]: s["id"] for s in payload["snapshot"]["storages"]}
    state = fold(steps_of(payload))[3]
    at_step = {t.name: t.storage for t in state.tensors}
    assert at_step["b"] == final["b"]
    assert at_step["a"] not in final.values()
    assert at_step["c"] == at_step["a"]
    assert payload["steps"][3]["storage_keys"] == {
        final["b"]: "m" + final["b"][1:],
        at_step["a"]: "m" + at_step["a"][1:],
    }
    # The next step frees a's memory: its changes name it by the same renamed key.
    freed = run(STORAGE_IDS, {"outline": True, "state_at": 4})["steps"][4]["changes"]["storages"]["freed"]
    assert freed == [{"id": "m" + at_step["a"][1:], "members": ["a", "c"]}]


def test_state_at_past_the_last_step_gives_a_plain_outline():
    payload = run(STORAGE_IDS, {"outline": True, "state_at": 99})
    assert len(payload["steps"]) == 6 and all(s.state is None for s in steps_of(payload))
    assert not payload["warnings"]


def test_a_time_limit_in_an_outline_step_still_ends_the_run(monkeypatch):
    """The outline's steps pause no timer, so the run's TimeLimit may fire inside one: it must end
    the run as it would anywhere in the snippet, not be swallowed as a skipped step (the soft
    timer fires once: the snippet would then run on to the worker's hard kill)."""
    seen, fired = trace.Tracer._new_stdout, list[bool]()

    def fire_at_the_third(self):
        if len(self.steps) == 2 and not fired:
            fired.append(True)
            raise TimeLimit("exceeded exec_timeout_s=5")
        return seen(self)

    monkeypatch.setattr(trace.Tracer, "_new_stdout", fire_at_the_third)
    payload = run("x = 1\ny = 2\nz = 3\nw = 4\n", {"outline": True})
    assert payload["error"]["type"] == "TimeLimit" and payload["error"]["line"] == 3
    assert len(payload["steps"]) == 3 and payload["steps"][2]["kind"] == "error"


HOSTILE_TEXT = """\
try:
    raise ValueError('"quote" \\\\ back\\nnew \\udcff lone </script>')
except ValueError:
    print('tab\\t"printed" \\u2603')
"""


def test_an_outline_step_written_by_hand_is_strict_json_of_the_same_step():
    """The outline's steps skip the encoder: quotes, backslashes, newlines and a lone surrogate
    in a note or in stdout must still come out as the step they are, as the encoder writes it
    for a light run."""
    payload = json.loads(run_snippet(HOSTILE_TEXT, LIMITS, trace={"outline": True}))
    caught, printed = payload["steps"][0], payload["steps"][1]
    assert caught["kind"] == "caught"
    assert caught["note"].startswith('raised ValueError: "quote" \\ back\nnew \udcff lone </script>')
    assert printed["stdout"] == 'tab\t"printed" \u2603\n'
    assert "changes" not in caught  # the schema's default, empty_changes(), stands for it
    assert Step.model_fields["changes"].get_default(call_default_factory=True).model_dump() == empty_changes()
    light = json.loads(run_snippet(HOSTILE_TEXT, LIMITS, trace={"states": False}))
    assert [placed(s) for s in payload["steps"]] == [placed(s) for s in light["steps"]]


@pytest.mark.integration
def test_an_outline_with_one_state_through_the_real_pool(sandbox):
    """The options cross the pool's wire (to_wire, from_wire in the child) and the renamed step
    comes back spliced into the result."""
    res = sandbox.result(STORAGE_IDS, trace={"outline": True, "state_at": 3})
    assert res["ok"] is True
    assert [s.get("state") is not None for s in res["steps"]] == [False, False, False, True, False, False]
    final = {s["members"][0]["name"]: s["id"] for s in res["snapshot"]["storages"]}
    assert res["steps"][3]["storage_keys"][final["b"]] == "m" + final["b"][1:]


@pytest.mark.parametrize(("case", "k"), [*_picks(), *((c, 2) for c in sorted(LESSONS))])
def test_a_state_only_run_gives_the_same_step_view_without_the_final_snapshot(case, k):
    """state_only (what the page's step fragment asks for) sends steps up to k, the calls until
    then and none of the final state; the view of step k is the one a whole state_at run gives,
    storage ids included (its last look numbers the storages and nothing else)."""
    from app.web import timeline

    whole = RunResponse.model_validate(_flatten(run(CASES[case], {"outline": True, "state_at": k})))
    only = RunResponse.model_validate(
        _flatten(run(CASES[case], {"outline": True, "state_at": k, "state_only": True}))
    )
    assert only.steps == whole.steps[: k + 1]
    assert (only.tensors, only.arrays, only.storages, only.modules, only.graph.nodes) == ([], [], [], [], [])
    assert [c.step for c in only.calls] == [c.step for c in whole.calls if c.step is not None and c.step <= k]
    views = [timeline.state_at(r, k).model_dump(exclude={"duration_ms", "wall_ms"}) for r in (whole, only)]
    assert views[0] == views[1]
