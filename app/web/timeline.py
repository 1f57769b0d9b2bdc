"""The step-through timeline: labels and "what changed" lines per step, the state after any step
rebuilt from the run's step deltas, and a small cache of recent traced runs.

The page renders the final state with the run (as before) plus the timeline; moving the slider
posts (run token, step) and gets that step's panels back, built from the cached run, so a step
shows exactly what that run saw (an unseeded torch.randn is not re-rolled). A cache miss (server
restarted, run evicted) re-runs the code.
"""
from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass, field

from app.inspector.diff import apply_state
from app.schemas import FieldChange, RunResponse, Step
from app.web.view_model import fmt_shape

CACHE_RUNS_MAX = 64
_GRAD_MODES = {"enable_grad": "grad on", "no_grad": "no_grad", "inference_mode": "inference_mode"}


@dataclass
class Change:
    text: str
    name: str | None = None       # tensor/array row to highlight
    kind: str = "changed"         # "added" | "changed" | "removed" | "storage" | "graph" | "stdout"
    storage: str | None = None    # storage id to highlight


@dataclass
class TimelineStep:
    index: int
    start_line: int
    end_line: int
    label: str
    kind: str
    changes: list[Change] = field(default_factory=list)
    note: str | None = None


@dataclass
class Timeline:
    token: str
    steps: list[TimelineStep]
    current: int
    truncated: bool

    @property
    def step(self) -> TimelineStep:
        return self.steps[self.current]


class RunCache:
    """Recent traced runs by token: (code, response). Bounded LRU; one process's memory."""

    def __init__(self, size: int = CACHE_RUNS_MAX) -> None:
        self.size = size
        self._runs: OrderedDict[str, tuple[str, RunResponse]] = OrderedDict()

    def put(self, code: str, resp: RunResponse) -> str:
        token = secrets.token_urlsafe(9)
        self._runs[token] = (code, resp)
        while len(self._runs) > self.size:
            self._runs.popitem(last=False)
        return token

    def get(self, token: str, code: str | None) -> RunResponse | None:
        """The run `token` names; with `code`, only if that run was of this code (a page whose
        code changed since gets None and runs again). Tokens are 72 random bits."""
        hit = self._runs.get(token)
        if hit is None or (code is not None and hit[0] != code):
            return None
        self._runs.move_to_end(token)
        return hit[1]


RUNS = RunCache()


def build(resp: RunResponse, token: str, current: int | None = None) -> Timeline | None:
    if not resp.steps:
        return None
    states = _states(resp.steps)
    steps = [TimelineStep(s.index, s.start_line, s.end_line, _label(s), s.kind,
                          describe_changes(s, states[i], states[i - 1] if i else {}), s.note)
             for i, s in enumerate(resp.steps)]
    last = len(steps) - 1
    current = last if current is None else max(0, min(current, last))
    return Timeline(token, steps, current, resp.steps_truncated)


def _label(step: Step) -> str:
    lines = (f"line {step.start_line}" if step.start_line == step.end_line
             else f"lines {step.start_line}-{step.end_line}")
    where = f"{lines}, iteration {step.iteration}" if step.iteration else lines
    if step.kind == "error":
        where += ", raised"
    elif step.kind == "caught":
        where += ", raised and caught"
    return f"{where} · {_GRAD_MODES.get(step.grad_mode, step.grad_mode)}"


def _states(steps: list[Step]) -> list[dict]:
    states, state = [], {}
    for step in steps:
        if isinstance(step.state, dict):
            state = apply_state(state, step.state)
        states.append(state)
    return states


def state_at(resp: RunResponse, index: int) -> RunResponse:
    """The response as it would have been had the snippet stopped after step `index`."""
    index = max(0, min(index, len(resp.steps) - 1))
    state = _states(resp.steps[: index + 1])[-1]
    step = resp.steps[index]
    stdout = "".join(s.stdout for s in resp.steps[: index + 1])
    failed = step.kind == "error"
    return RunResponse.model_validate({
        **state, "ok": not failed, "error": resp.error.model_dump() if failed and resp.error else None,
        "stdout": {"text": stdout, "truncated": False}, "duration_ms": resp.duration_ms,
        "wall_ms": resp.wall_ms})


def describe_changes(step: Step, state: dict, before: dict) -> list[Change]:
    out: list[Change] = []
    ch = step.changes
    entries = {e.get("name"): e for kind in ("tensors", "arrays") for e in state.get(kind, [])}
    members = {s.get("id"): [m.get("name") for m in s.get("members", [])]
               for s in state.get("storages", [])}
    alias_of = {a: e.get("name") for kind in ("tensors", "arrays") for e in before.get(kind, [])
                for a in e.get("aliases") or []}
    for section in (ch.tensors, ch.arrays):
        for name in section.added:
            entry = entries.get(name, {})
            shape = f" {fmt_shape(entry['shape'])}" if entry.get("shape") is not None else ""
            if name in alias_of:  # `y = x; x = x + 1`: y is no new tensor, x moved away from it
                text = f"{name}{shape} listed alone: it was another name for {alias_of[name]}"
            else:
                text = f"new {name}{shape}" + _shares(name, entry.get("storage"),
                                                      ch.storages.added, members)
            out.append(Change(text, name, "added"))
        for fc in section.changed:
            out.append(Change(f"{fc.name}: {_field_text(fc)}", fc.name))
        for name in section.removed:
            out.append(Change(f"{name} is gone", name, "removed"))
    for sid in ch.storages.added:
        out.append(Change(f"new storage {sid} ({', '.join(members.get(sid, []))})",
                          kind="storage", storage=sid))
    for freed in ch.storages.freed:
        out.append(Change(f"storage freed (held {', '.join(freed.members)})", kind="storage"))
    if ch.graph.added:
        names = ", ".join(n.name for n in ch.graph.added[:6])
        more = f" and {len(ch.graph.added) - 6} more" if len(ch.graph.added) > 6 else ""
        out.append(Change(f"graph: + {names}{more}", kind="graph"))
    for name in ch.modules.added:
        out.append(Change(f"new {name}", kind="added"))
    for fc in ch.modules.changed:
        out.append(Change(f"{fc.name}: {_field_text(fc)}"))
    if step.stdout:
        first = step.stdout.strip().splitlines()[0] if step.stdout.strip() else ""
        out.append(Change(f"printed: {first[:80]}", kind="stdout"))
    return out


def _shares(name: str, sid: str | None, new_storages: list[str],
            members: dict[str, list[str]]) -> str:
    """The suffix ", shares s0 with a" for a new name in memory that was already there (a view,
    `from_numpy`...); a copy gets a "new storage" line instead."""
    others = [m for m in members.get(sid, []) if m != name] if sid else []
    if sid in new_storages or not others:
        return ""
    more = f" and {len(others) - 3} more" if len(others) > 3 else ""
    return f", shares {sid} with {', '.join(others[:3])}{more}"


def _alias_text(old, new) -> str:
    old, new = old or [], new or []
    added, gone = [n for n in new if n not in old], [n for n in old if n not in new]
    parts = []
    if added:
        parts.append(f"also named {', '.join(added)}")
    if gone:
        parts.append(f"no longer named {', '.join(gone)}")
    return "; ".join(parts)


def _field_text(fc: FieldChange) -> str:
    parts = []
    for name, (old, new) in ((k, (v + [None, None])[:2]) for k, v in fc.fields.items()):
        if name == "aliases":
            parts.append(_alias_text(old, new))
        elif name == "grad":
            parts.append(".grad appeared" if old is None else
                         ".grad became None" if new is None else f".grad {old} → {new}")
        elif name == "storage":
            parts.append("now in new memory")
        else:
            parts.append(f"{name} {_value(old)} → {_value(new)}")
    if fc.values_changed:
        parts.append("values changed")
    return ", ".join(parts)


def _value(v) -> str:
    if isinstance(v, list):
        return fmt_shape(v)
    return str(v)
