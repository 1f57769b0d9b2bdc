"""Outline runs (TraceOptions.outline): steps without changes or state, and one step's on demand.

An outline run records the very steps of a traced run (app.sandbox.trace: same indexes, lines,
iterations, kinds, notes, grad modes, stdout) but observes nothing at them: each step's
`changes` is empty and its `state` null, so the run costs about what its plain run costs. The
page asks for it first, then for the step a learner opens with `state_at=k`: that run observes
the namespace twice, after step k-1 and after step k (OneState), and step k alone carries
* `state`: the whole state after it, as a delta from the EMPTY state (app.inspector.diff
  state_delta(None, ...)), so app.web.states.fold() over the steps gives it at index k;
* `changes`: what changed since step k-1, in the light mode's form (app.inspector.changes:
  storage ids are the stable keys, "m3"), diffed from the two snapshots;
* `storage_keys`: {storage id in that state: key}, as the full-states mode gives them.

Storage ids. A full-states run numbers memory in the order every step first saw it; an outline
run saw nothing before step k-1, so its own numbers would mean other memory than the final
snapshot's. The final snapshot of an outline run is a plain run's (snapshot()). With step k
held, it is taken by an observer with a fresh labeller (the same snapshot, ids included, where
each storage group's lowest allocation is also the first one seen in it: every lesson,
tests/sandbox/test_trace_outline.py), and step k's numbers are renamed after it: memory still
alive at the end takes its final id, memory gone by then a number the final snapshot does not
use. So a storage has one id on the page whether it shows the end or step k.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from app.inspector.diff import diff, empty_changes, state_delta
from app.inspector.encoder import snapshot
from app.inspector.labels import StorageLabeller
from app.inspector.limits import InspectLimits
from app.inspector.observe import Observation, StepObserver
from app.sandbox.instrument import Site

_STORAGE_PREFIXES = ("s", "m")  # storage ids ("s3") and keys ("m3") carry one label number


def outline_step(
    index: int, kind: str, site: Site, iteration: int | None, grad: str, stdout: str, note: str | None
) -> bytes:
    """A step that observed nothing, as JSON: its place, and of the rest only what differs from
    the public schema's defaults (app.schema_steps.Step: a statement, under enable_grad, printing
    nothing, no note; nothing changed, no state), which fill in the rest. Defaults were 85% of a
    lesson outline's bytes, every one encoded, carried, parsed and validated. Written by hand: a
    step's encoding through wirejson (its headroom probe maps and unmaps address space) was 2/3
    of its cost. The strings go through json.dumps (escaped to ASCII: lone surrogates too), the
    rest are ints and names."""
    parts = [f'{{"index":{index:d},"start_line":{site.start_line:d},"end_line":{site.end_line:d}']
    if kind != "statement":
        parts.append(f'"kind":"{kind}"')
    if iteration is not None:
        parts.append(f'"iteration":{int(iteration):d}')
    if grad != "enable_grad":
        parts.append(f'"grad_mode":"{grad}"')
    if stdout:
        parts.append(f'"stdout":{json.dumps(stdout)}')
    if note is not None:
        parts.append(f'"note":{json.dumps(note)}')
    return (",".join(parts) + "}").encode()


_UNSENT = {"truncated": False, "warnings": []}  # the final snapshot of a run that sends none


class OneState:
    """The two observations of an outline run with state_at=`at` (None: no state at all), and
    the final snapshot, after which step `at`'s storage ids are renamed (see the module)."""

    def __init__(self, at: int | None, limits: InspectLimits | None = None, view_only: bool = False) -> None:
        self.at = at
        self.view_only = view_only  # TraceOptions.state_only: no final snapshot is sent
        self.limits = limits or InspectLimits()
        self._labeller = StorageLabeller()  # the steps' labels, renamed after the final snapshot
        self._observer = StepObserver(self.limits, labeller=self._labeller)
        self._before: Observation | None = None
        self.warnings: list[str] = []
        self.memory: dict | None = None  # the ledger's totals after step `at`, for it to carry

    def observes(self, index: int) -> bool:
        """Whether the step of this index is observed at all (the others cost nothing)."""
        return self.at is not None and self.at - 1 <= index <= self.at

    def observe(self, namespace: dict, index: int) -> tuple[dict, dict, dict | None]:
        """(changes, storage keys, state) of the step of this index (observes() was true)."""
        obs = self._observer.observe(namespace)  # the one call site where a step is observed
        if index != self.at:  # the step before: its snapshot is what step `at` is compared with
            self._before, self.memory = obs, None
            return empty_changes(), {}, None
        self.memory = self._observer.memory
        before, keys_before = (
            (self._before.snapshot, self._before.storage_keys) if self._before else (None, {})
        )
        changes = diff(
            before, obs.snapshot, storage_keys_before=keys_before, storage_keys_after=obs.storage_keys
        )
        self._before = None
        return (
            keyed(changes, keys_before, obs.storage_keys),
            dict(obs.storage_keys),
            state_delta(None, obs.snapshot),
        )

    def final(self, namespace: dict) -> dict:
        """The final snapshot with no step to rename: a plain run's, as snapshot() takes it (no
        labeller, no fingerprints: cheaper than a first look by an observer); none for a
        view_only run, which sends none."""
        return dict(_UNSENT) if self.view_only else snapshot(namespace, limits=self.limits)

    def final_renaming(self, namespace: dict) -> tuple[dict, Callable[[dict], dict]]:
        """(the final snapshot, which is final()'s but for storage ids where groups are not in
        their lowest allocation's order; the renaming of step `at`'s storage ids). A view_only
        run's final snapshot is not sent: its last look only numbers the storages."""
        labeller = StorageLabeller()
        self._observer.relabel(labeller)  # what step `at` described is reused, not described again
        if self.view_only:
            self._observer.label(namespace)
            snap = dict(_UNSENT)
        else:
            snap = self._observer.observe(namespace, final=True).snapshot
        ends = labeller.alive()
        numbers = {n: ends[key] for key, n in self._labeller.alive().items() if key in ends}
        return snap, Renaming(numbers, first_free=max(ends.values(), default=-1) + 1).step


# What a step's view reads of the final snapshot (app.web.timeline.state_at): the rest is the
# end's state, which a state_only run does not send.
_VIEW_READS = ("truncated", "warnings", "calls_cap", "calls_left_out")


def only_the_step(steps: dict, snap: dict | None, at: int) -> tuple[dict, dict | None]:
    """A state_only run's result (TraceOptions.state_only): the steps up to `at` and, of the
    final snapshot, the calls made until step `at` (a prefix: calls come in call order, each
    with the step it is part of) and the few fields the step's view reads."""
    kept = dict(steps)
    listed = steps.get("steps")
    if isinstance(listed, list):
        kept["steps"] = type(listed)(listed[: at + 1])  # trace.Encoded stays Encoded
    if not isinstance(snap, dict):
        return kept, snap
    out = {k: snap[k] for k in _VIEW_READS if k in snap}
    calls = snap.get("calls")
    if isinstance(calls, list):
        ends = next((n for n, c in enumerate(calls) if c.get("step") is None or c["step"] > at), len(calls))
        out["calls"] = calls[:ends]
    return kept, out


def keyed(changes: dict, keys_before: dict[str, str], keys_after: dict[str, str]) -> dict:
    """diff's changes with the snapshots' storage ids replaced by their keys, as the light mode
    (app.inspector.changes) gives them: tests/sandbox/test_trace_light.py checks the two agree."""
    out = dict(changes)
    for section in ("tensors", "arrays"):
        part = changes[section]
        out[section] = dict(part, changed=[_keyed_entry(e, keys_before, keys_after) for e in part["changed"]])
    storages = changes["storages"]
    out["storages"] = {
        "added": [keys_after[s] for s in storages["added"]],
        "freed": [dict(f, id=keys_before[f["id"]]) for f in storages["freed"]],
    }
    return out


def _keyed_entry(entry: dict, keys_before: dict[str, str], keys_after: dict[str, str]) -> dict:
    if "storage" not in entry["fields"]:
        return entry
    old, new = entry["fields"]["storage"]
    return dict(entry, fields=dict(entry["fields"], storage=[keys_before.get(old), keys_after.get(new)]))


class Renaming:
    """Label numbers of the steps' labeller -> the final snapshot's; a number with no final
    counterpart gets the next one the final snapshot does not use, in the order met."""

    def __init__(self, numbers: dict[int, int], first_free: int) -> None:
        self._numbers = dict(numbers)
        self._next = first_free

    def label(self, text: Any) -> Any:
        """ "s3" / "m3" renamed; anything else (None) as it is."""
        if not (isinstance(text, str) and text[:1] in _STORAGE_PREFIXES and text[1:].isdigit()):
            return text
        number = int(text[1:])
        if number not in self._numbers:
            self._numbers[number], self._next = self._next, self._next + 1
        return f"{text[0]}{self._numbers[number]}"

    def step(self, step: dict) -> dict:
        """The step with every storage id and key renamed: in its state, its storage keys and
        its changes."""
        rn = self.label
        out = dict(step, storage_keys={rn(s): rn(k) for s, k in step["storage_keys"].items()})
        state = step["state"]
        if state is not None:
            state = dict(state)
            for section in ("tensors", "arrays"):
                state[section] = dict(state[section], set=[_placed(e, rn) for e in state[section]["set"]])
            storages = state["storages"]
            state["storages"] = {
                "keys": None if storages["keys"] is None else [rn(s) for s in storages["keys"]],
                "set": [dict(s, id=rn(s["id"])) for s in storages["set"]],
            }
            out["state"] = state
        out["changes"] = _renamed_changes(step["changes"], rn)
        return out


def _placed(entry: dict, rn: Callable[[Any], Any]) -> dict:
    return dict(entry, storage=rn(entry["storage"])) if "storage" in entry else entry


def _renamed_changes(changes: dict, rn: Callable[[Any], Any]) -> dict:
    out = dict(changes)
    for section in ("tensors", "arrays"):
        part = changes[section]
        changed = [
            dict(e, fields=dict(e["fields"], storage=[rn(v) for v in e["fields"]["storage"]]))
            if "storage" in e["fields"]
            else e
            for e in part["changed"]
        ]
        out[section] = dict(part, changed=changed)
    storages = changes["storages"]
    out["storages"] = {
        "added": [rn(k) for k in storages["added"]],
        "freed": [dict(f, id=rn(f["id"])) for f in storages["freed"]],
    }
    return out
