"""The Calls panel's view model: every nn.Module forward call of a run (RunResponse.calls), as a
tree like torchinfo's summary, from hostile input. No HTML: templates escape.

A row's shapes use the page's one shape format (app.web.shapes). The parameter total counts each
module's own parameters once, however often it was called: by path, and for a module no name
reaches ("<Conv2d>") by its path under its parent call's module. Each row links to the Modules
panel's entry (templates/_modules.html ids them "module-<i>") of the module its path names, or
else of the nearest enclosing one ("model" for "model.features.0"). O(calls x shape nodes): the
schema caps both, and at most ROWS_MAX rows are drawn.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from app.schema_memory import ModuleCall
from app.schemas import ModuleInfo, RunResponse
from app.web.budget import check
from app.web.shapes import ELIDED, shape_text

ROWS_MAX = 500  # call rows drawn; the rest are counted
SHAPE_CHARS_MAX = 120  # of one call's output shapes, as drawn (the hover title has as much)
INDENT_LEVELS_MAX = 12  # deeper calls are indented as this deep (their depth is still said)
_OPEN = {"tuple": "(", "list": "[", "dict": "{"}
_CLOSE = {"tuple": ")", "list": "]", "dict": "}"}


@dataclass
class CallRow:
    index: int
    depth: int
    indent: int  # min(depth, INDENT_LEVELS_MAX)
    path: str
    label: str  # the path below its parent call's (".0.self_attn" under "enc.layers"), else whole
    class_: str
    output: str  # the output shapes, or "" when none were recorded
    params: int
    count: int
    link: str | None  # the Modules panel's id of its module, or None
    link_name: str | None  # the name of the module linked to
    step: int | None  # 1-based, as the timeline shows it

    @property
    def params_text(self) -> str:
        return f"{self.params:,}"


@dataclass
class CallsView:
    rows: list[CallRow]
    rows_hidden: int  # listed by the run but not drawn here
    total_params: int
    listed: int  # calls the run listed
    left_out: int  # calls past the run's cap, not listed
    cap: int | None

    @property
    def total_text(self) -> str:
        return f"{self.total_params:,}"

    @property
    def cap_text(self) -> str:
        """What the cap left out, in words ("" when nothing was)."""
        if not self.left_out:
            return ""
        return f"{self.listed:,} calls listed; {self.left_out:,} more not listed (the cap)."


def build(resp: RunResponse, modules: Sequence[ModuleInfo] | None = None) -> CallsView | None:
    """The panel of a run's calls; None when no module was called. `modules`: the Modules panel's
    entries, in its order (the links' targets); by default the run's own modules."""
    if not resp.calls and not resp.calls_left_out:
        return None
    targets = _targets(resp.modules if modules is None else modules)
    shown = resp.calls[:ROWS_MAX]
    rows = [
        _row(i, c, targets, shown[c.parent].path if c.parent is not None else "") for i, c in enumerate(shown)
    ]
    return CallsView(
        rows=rows,
        rows_hidden=max(0, len(resp.calls) - ROWS_MAX),
        total_params=total_params(resp.calls),
        listed=len(resp.calls),
        left_out=resp.calls_left_out,
        cap=resp.calls_cap,
    )


def calls_until(calls: Sequence[ModuleCall], index: int) -> list[ModuleCall]:
    """The calls made up to step `index` (0-based), for the panels at that step. Calls come in
    call order, so these are a prefix, and every parent index still points inside it."""
    for n, call in enumerate(calls):
        if call.step is None or call.step > index:
            return list(calls[:n])
    return list(calls)


def total_params(calls: Sequence[ModuleCall]) -> int:
    """Each module's own parameters once (O(n)): a module called ten times has them once."""
    keys: list[str] = []
    seen: dict[str, int] = {}
    for c in calls:
        check()
        parent = keys[c.parent] if c.parent is not None else ""
        key = f"{parent}/{c.path}" if c.path.startswith("<") else c.path
        keys.append(key)
        seen.setdefault(key, c.params)
    return sum(seen.values())


def _targets(modules: Sequence[ModuleInfo]) -> dict[str, tuple[str, str]]:
    """Module name (and alias) -> (element id, the name), for the kind the Modules panel lists."""
    out: dict[str, tuple[str, str]] = {}
    for i, m in enumerate(x for x in modules if x.kind == "module"):
        check()
        for name in (m.name, *m.aliases):
            out.setdefault(name, (f"module-{i}", m.name))
    return out


def _row(i: int, c: ModuleCall, targets: dict[str, tuple[str, str]], parent: str) -> CallRow:
    """Row `i`; `parent`: its parent call's path. Every row of a big model starts with the same
    long name, so a row says what its indentation does not: the rest of its path."""
    check()
    target = _target(c.path, targets)
    inside = bool(parent) and not parent.startswith("<") and c.path.startswith(parent + ".")
    label = "." + c.path.removeprefix(parent + ".") if inside else c.path
    return CallRow(
        index=i,
        depth=c.depth,
        indent=min(c.depth, INDENT_LEVELS_MAX),
        path=c.path,
        label=label,
        class_=c.class_,
        output="" if c.output_shapes is None else shapes_text(c.output_shapes),
        params=c.params,
        count=c.count,
        link=target[0] if target else None,
        link_name=target[1] if target else None,
        step=None if c.step is None else c.step + 1,
    )


def _target(path: str, targets: dict[str, tuple[str, str]]) -> tuple[str, str] | None:
    """The entry of `path`, or of the nearest enclosing name ("model" for "model.features.0")."""
    if path.startswith("<"):
        return None
    while path:
        if path in targets:
            return targets[path]
        path = path.rpartition(".")[0]
    return None


def shapes_text(tree: Any, limit: int = SHAPE_CHARS_MAX) -> str:
    """A shape summary (app.schema_memory.shape_tree) as text: a tensor's shape "(1, 8, 30, 30)",
    a tuple "((1, 8), (1,))", a list "[...]", a dict "{out: (1, 10)}", anything else its type;
    cut to `limit` characters with "…" (only as much is written as is shown)."""
    out, size = [], 0
    for piece in _pieces(tree):
        out.append(piece)
        size += len(piece)
        if size > limit:
            return "".join(out)[: limit - 1] + ELIDED
    return "".join(out)


def _pieces(node: Any) -> Iterator[str]:
    # Recursion is bounded: the schema allows SHAPE_DEPTH_MAX (8) levels.
    kind = node.get("kind")
    if kind == "tensor":
        yield shape_text(node.get("shape", []))
        return
    if kind not in _OPEN:
        yield str(node.get("type") or "?")
        return
    yield _OPEN[kind]
    for k, item in enumerate(node.get("items", [])):
        if k:
            yield ", "
        if kind == "dict":
            yield f"{item.get('key', '?')}: "
        yield from _pieces(item)
    yield _CLOSE[kind]
