"""The state after each step, folded from a run's typed step deltas (app.schemas.StateDelta):
the web side of app.inspector.diff.apply_state, on validated models and without torch.

A delta's keyed section sets the entries that are new or differ and, when the order changed,
all the keys in their new order; a section absent or null is unchanged, and so are the graph
and the truncated flag when absent. Each step costs O(entries of the state) (dicts by key), and
entries are shared between states, never copied. Repeated keys keep their first place, so the
names of a folded state are unique like a snapshot's, whatever a forged delta says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.schemas import Graph, Output, RunResponse, Step

_KEYED = {"tensors": "name", "arrays": "name", "storages": "id", "modules": "name"}


@dataclass(frozen=True)
class State:
    tensors: list = field(default_factory=list)
    arrays: list = field(default_factory=list)
    storages: list = field(default_factory=list)
    modules: list = field(default_factory=list)
    graph: Graph = field(default_factory=Graph)
    truncated: bool = False


def fold(steps: list[Step]) -> list[State]:
    """The state after each of `steps` (the first one's delta is from the empty state)."""
    states, state = [], State()
    for step in steps:
        state = apply(state, step)
        states.append(state)
    return states


def apply(before: State, step: Step) -> State:
    delta = step.state
    if delta is None:
        return before
    parts = {name: _keyed(getattr(before, name), getattr(delta, name), key) for name, key in _KEYED.items()}
    return State(
        **parts,
        graph=before.graph if delta.graph is None else delta.graph,
        truncated=before.truncated if delta.truncated is None else delta.truncated,
    )


def _keyed(before: list, part: Any, key: str) -> list:
    if part is None or (part.keys is None and not part.set):
        return before
    by_key = {getattr(e, key): e for e in before}
    by_key.update((getattr(e, key), e) for e in part.set)
    keys = part.keys if part.keys is not None else [getattr(e, key) for e in before]
    return [by_key[k] for k in dict.fromkeys(keys) if k in by_key]


def as_response(
    state: State,
    *,
    ok: bool,
    error: Any,
    stdout: str,
    duration_ms: float,
    wall_ms: float | None,
    seed: int | None = None,
) -> RunResponse:
    """A response of that state: its entries are validated already, so none is validated again
    (a state of 500 tensors took ~10 ms to re-validate on every slider move)."""
    return RunResponse.model_construct(
        ok=ok,
        error=error,
        stdout=Output(text=stdout),
        stderr=Output(),
        duration_ms=duration_ms,
        wall_ms=wall_ms,
        tensors=state.tensors,
        arrays=state.arrays,
        storages=state.storages,
        graph=state.graph,
        modules=state.modules,
        truncated=state.truncated,
        warnings=[],
        steps=[],
        steps_truncated=False,
        seed=seed,  # the run's: a step's panels say what it started from too
    )
