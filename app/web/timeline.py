"""The step-through timeline: labels and "what changed" lines per step, the state after any step
rebuilt from the run's step deltas.

The page's run is an outline (TraceOptions.outline): the steps' places, lines, kinds and output,
no changes and no states, at about a plain run's cost. The page renders the final state with
the timeline resting at its last step; opening a step posts (code, step) and the server runs the
code again with state_at=step, which gives that step alone its changes and its whole state, so
any replica draws it (runs are seeded, so reproducible); app.web.run_cache may keep the run by
its content. The same code reads a run with every step's state (the API's step_states).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

from app.schemas import FieldChange, RunResponse, Step
from app.web import calls_view, memory_view
from app.web.budget import check
from app.web.states import State, as_response, fold
from app.web.view_model import fmt_shape

STEPS_MAX = 2_000  # steps drawn (the worker records TP_TRACE_STEPS_MAX, 200)
CHANGES_MAX = 100  # change lines listed per step; the rest are counted
SHARES_NAMED = 3  # names in ", shares s0 with a, b, c and 4 more"
LISTED_MAX = 12  # names in "new storage s1 (a, b, ...)" and the like
STDOUT_SCAN_CHARS = 4096  # of a step's output, looked at for its first line
VALUE_ITEMS_MAX, VALUE_CHARS_MAX = 64, 200  # a field's before/after value as printed
_GRAD_MODES = {"enable_grad": "grad on", "no_grad": "no_grad", "inference_mode": "inference_mode"}


@dataclass
class Change:
    text: str
    name: str | None = None  # tensor/array row to highlight
    kind: str = "changed"  # "added" | "changed" | "removed" | "storage" | "graph" | "stdout"
    storage: str | None = None  # storage id to highlight


@dataclass
class TimelineStep:
    index: int
    start_line: int
    end_line: int
    label: str
    kind: str
    note: str | None = None
    # The step's change lines, computed when first asked for: a page shows one step's, and
    # describing all of them cost steps x state size per render.
    describe: Callable[[], list[Change]] = field(default=list, repr=False, compare=False)
    _changes: list[Change] | None = field(default=None, repr=False, compare=False)

    @property
    def changes(self) -> list[Change]:
        if self._changes is None:
            self._changes = self.describe()
        return self._changes


@dataclass
class Timeline:
    steps: list[TimelineStep]
    current: int
    truncated: bool
    # Whether the run carries the current step's changes: an outline run (the page's) does
    # not, and the page says so rather than "nothing changed".
    described: bool = True

    @property
    def step(self) -> TimelineStep:
        return self.steps[self.current]


def build(resp: RunResponse, current: int | None = None, *, described: bool = True) -> Timeline | None:
    """The timeline at step `current` (None: the last); `described`: the run carries that
    step's changes (see Timeline)."""
    if not resp.steps:
        return None
    shown = resp.steps[:STEPS_MAX]
    states = fold(shown)  # typed, read as they are by describe_changes
    steps = []
    for i, s in enumerate(shown):
        check()
        steps.append(
            TimelineStep(
                s.index,
                s.start_line,
                s.end_line,
                _label(s),
                s.kind,
                s.note,
                partial(describe_changes, s, states[i], states[i - 1] if i else State()),
            )
        )
    last = len(steps) - 1
    current = last if current is None else max(0, min(current, last))
    truncated = resp.steps_truncated or len(resp.steps) > STEPS_MAX
    return Timeline(steps, current, truncated, described)


def _label(step: Step) -> str:
    lines = (
        f"line {step.start_line}"
        if step.start_line == step.end_line
        else f"lines {step.start_line}-{step.end_line}"
    )
    where = f"{lines}, iteration {step.iteration}" if step.iteration else lines
    if step.kind == "error":
        where += ", raised"
    elif step.kind == "caught":
        where += ", raised and caught"
    return f"{where} · {_GRAD_MODES.get(step.grad_mode, step.grad_mode)}"


def state_at(resp: RunResponse, index: int) -> RunResponse:
    """The response as it would have been had the snippet stopped after step `index`."""
    index = max(0, min(index, len(resp.steps) - 1))
    state = fold(resp.steps[: index + 1])[-1]
    step = resp.steps[index]
    stdout = "".join(s.stdout for s in resp.steps[: index + 1])
    failed = step.kind == "error"
    out = as_response(
        state,
        ok=not failed,
        error=resp.error if failed else None,
        stdout=stdout,
        duration_ms=resp.duration_ms,
        wall_ms=resp.wall_ms,
        seed=resp.seed,
    )
    # The Memory and Calls panels after this step: its ledger totals, the calls made so far.
    out.memory = memory_view.memory_at(step)
    out.calls = calls_view.calls_until(resp.calls, index)
    return out


def describe_changes(step: Step, state, before) -> list[Change]:
    """The "what changed" lines of one step: O(n) in the state's size and the step's changes,
    at most CHANGES_MAX lines (a step adding 25,000 names was 10 s of quadratic scans).
    `state`, `before`: app.web.states.State (typed entries, read as they are: dumping 500
    entries with their previews to dicts cost 1.8 s), or the same as dicts."""
    out = _Lines()
    ch = step.changes
    # Indexes of the whole state, built only for a step that adds something (most add nothing).
    adds = bool(ch.tensors.added or ch.arrays.added or ch.storages.added)
    entries = (
        {_get(e, "name"): e for kind in ("tensors", "arrays") for e in _section(state, kind)} if adds else {}
    )
    members = _Members(_section(state, "storages") if adds else [])
    alias_of = _alias_of(before, ch) if adds else {}
    # A storage the changes name by its stable key (m3) is named by its id in this step's state
    # (s1) where the step maps it, as the panels name it.
    in_state = {m: sid for sid, m in (getattr(step, "storage_keys", None) or {}).items()}
    added_storages = [in_state.get(sid, sid) for sid in ch.storages.added]
    new_storages = set(added_storages)
    for section in (ch.tensors, ch.arrays):
        for name in out.take(section.added):
            entry = entries.get(name)
            shape = _get(entry, "shape")
            shape = f" {fmt_shape(shape)}" if shape is not None else ""
            if name in alias_of:  # `y = x; x = x + 1`: y is no new tensor, x moved away from it
                text = f"{name}{shape} listed alone: it was another name for {alias_of[name]}"
            else:
                text = f"new {name}{shape}" + _shares(name, _get(entry, "storage"), new_storages, members)
            out.add(Change(text, name, "added"))
        for fc in out.take(section.changed):
            out.add(Change(f"{fc.name}: {_field_text(fc)}", fc.name))
        for name in out.take(section.removed):
            out.add(Change(f"{name} is gone", name, "removed"))
    for sid in out.take(added_storages):
        out.add(Change(f"new storage {sid} ({members.listed(sid)})", kind="storage", storage=sid))
    for freed in out.take(ch.storages.freed):
        out.add(Change(f"storage freed (held {_listed(freed.members)})", kind="storage"))
    if ch.graph.added:
        names = ", ".join(n.name for n in ch.graph.added[:6])
        more = f" and {len(ch.graph.added) - 6} more" if len(ch.graph.added) > 6 else ""
        out.add(Change(f"graph: + {names}{more}", kind="graph"))
    for name in out.take(ch.modules.added):
        out.add(Change(f"new {name}", kind="added"))
    for fc in out.take(ch.modules.changed):
        out.add(Change(f"{fc.name}: {_field_text(fc)}"))
    if step.stdout:
        first = step.stdout[:STDOUT_SCAN_CHARS].strip().splitlines()
        out.add(Change(f"printed: {first[0][:80] if first else ''}", kind="stdout"))
    return out.done()


def _alias_of(before, ch) -> dict:
    """Which entry each alias named before the step: from the state before it when the run has
    it, and from the step's own alias changes (a state_at run carries no state before the step;
    `e = e + 1` leaving h, an alias of the old e, changes e's aliases from [h] to [])."""
    out: dict = {}
    for section in (ch.tensors, ch.arrays):
        for fc in section.changed:
            old = (fc.fields.get("aliases") or [None])[0]
            for a in old if isinstance(old, list) else []:
                out.setdefault(_key(a), fc.name)
    for kind in ("tensors", "arrays"):
        for e in _section(before, kind):
            check()
            for a in _get(e, "aliases") or []:
                out[a] = _get(e, "name")
    return out


class _Lines:
    """Change lines, at most CHANGES_MAX; the rest are counted into one closing line."""

    def __init__(self) -> None:
        self.lines: list[Change] = []
        self.left_out = 0

    def take(self, items: list) -> list:
        check()
        room = max(0, CHANGES_MAX - len(self.lines))
        self.left_out += max(0, len(items) - room)
        return items[:room]

    def add(self, change: Change) -> None:
        self.lines.append(change)

    def done(self) -> list[Change]:
        if self.left_out:
            self.lines.append(Change(f"and {self.left_out} more changes not listed", kind="more"))
        return self.lines


class _Members:
    """Member names of a state's storages, read for the storages asked about only."""

    def __init__(self, storages: list) -> None:
        self.by_id = {_get(s, "id"): s for s in storages}
        self.made: dict = {}

    def _of(self, sid) -> tuple[list[str], set[str]]:
        """The member names of `sid` in order, and as a set."""
        if sid not in self.made:
            names = [_get(m, "name") for m in _get(self.by_id.get(sid), "members") or []]
            self.made[sid] = names, set(names)
        return self.made[sid]

    def others(self, sid, name: str) -> tuple[list[str], int]:
        """Up to SHARES_NAMED members of `sid` other than `name`, and how many there are."""
        names, unique = self._of(sid)
        count = len(unique) - (name in unique)
        return [m for m in names[: SHARES_NAMED + 1] if m != name][:SHARES_NAMED], count

    def listed(self, sid) -> str:
        return _listed(self._of(sid)[0])


def _section(state, name: str) -> list:
    """A state's section: a State's attribute, or a dict's item."""
    return (state.get(name) if isinstance(state, Mapping) else getattr(state, name, None)) or []


def _get(entry, key: str):
    """An entry's field: a model's attribute, or a dict's item (None when absent)."""
    if entry is None:
        return None
    return entry.get(key) if isinstance(entry, Mapping) else getattr(entry, key, None)


def _listed(names: list[str]) -> str:
    more = f" and {len(names) - LISTED_MAX} more" if len(names) > LISTED_MAX else ""
    return ", ".join(names[:LISTED_MAX]) + more


def _shares(name: str, sid: str | None, new_storages: set[str], members: _Members) -> str:
    """The suffix ", shares s0 with a" for a new name in memory that was already there (a view,
    `from_numpy`...); a copy gets a "new storage" line instead."""
    if not sid or sid in new_storages:
        return ""
    shown, count = members.others(sid, name)
    if not count:
        return ""
    more = f" and {count - len(shown)} more" if count > len(shown) else ""
    return f", shares {sid} with {', '.join(shown)}{more}"


def _alias_text(old, new) -> str:
    old, new = (v if isinstance(v, list) else [] for v in (old, new))
    old_set, new_set = set(map(_key, old)), set(map(_key, new))
    added = [n for n in new if _key(n) not in old_set]
    gone = [n for n in old if _key(n) not in new_set]
    parts = []
    if added:
        parts.append(f"also named {_listed(added)}")
    if gone:
        parts.append(f"no longer named {_listed(gone)}")
    return "; ".join(parts)


def _key(value):
    """A set key for a JSON value (aliases are names, but a field's before/after is any JSON)."""
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


def _field_text(fc: FieldChange) -> str:
    parts = []
    for name, (old, new) in ((k, (v + [None, None])[:2]) for k, v in fc.fields.items()):
        if name == "aliases":
            parts.append(_alias_text(old, new))
        elif name == "grad":
            parts.append(
                ".grad appeared"
                if old is None
                else ".grad became None"
                if new is None
                else f".grad {_value(old)} → {_value(new)}"
            )
        elif name == "storage":
            parts.append("now in new memory")
        else:
            parts.append(f"{name} {_value(old)} → {_value(new)}")
    if fc.values_changed:
        parts.append("values changed")
    return ", ".join(parts)


def _value(v) -> str:
    if isinstance(v, list):
        return fmt_shape(v) if len(v) <= VALUE_ITEMS_MAX else f"[{len(v)} items]"
    return str(v)[:VALUE_CHARS_MAX]
