"""Shared-storage picture: one strip per storage group with each member's byte range, and a
verdict per variable (a view of which other, sharing with a numpy array, or its own copy)."""
from __future__ import annotations

from dataclasses import dataclass, field

from app.schemas import RunResponse, StorageInfo

NAME_W, BAR_W, ROW_H = 130, 420, 20
STRIPS_MAX, MEMBERS_MAX = 12, 12


@dataclass(frozen=True)
class Bar:
    name: str
    kind: str
    idx: int | None              # row index in the Tensors table (for focus), if known
    x: float
    w: float
    y: int
    start: int
    end: int


@dataclass
class Strip:
    id: str
    device: str
    nbytes: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    hidden: int = 0              # members not drawn


@dataclass(frozen=True)
class Verdict:
    name: str
    kind: str
    idx: int | None
    storage: str | None
    text: str
    shared: bool


def strips(storages: list[StorageInfo], index: dict[str, int]) -> tuple[list[Strip], int]:
    """Strip geometry; the second value counts storages not drawn."""
    out = []
    for s in storages[:STRIPS_MAX]:
        scale = BAR_W / max(1, s.nbytes)
        strip = Strip(s.id, s.device, s.nbytes, height=0, hidden=max(0, len(s.members) - MEMBERS_MAX))
        for k, m in enumerate(s.members[:MEMBERS_MAX]):
            start, end = m.byte_range
            # Keep tiny ranges visible: at least 3 px wide.
            strip.bars.append(Bar(m.name, m.kind, index.get(m.name), NAME_W + start * scale,
                                  max(3.0, (end - start) * scale), 22 + k * ROW_H, start, end))
        strip.height = 22 + len(strip.bars) * ROW_H + 4
        out.append(strip)
    return out, max(0, len(storages) - STRIPS_MAX)


def verdicts(resp: RunResponse, index: dict[str, int]) -> list[Verdict]:
    groups = {s.id: s for s in resp.storages}
    out = []
    items = [(t.name, "tensor", t.storage, t.byte_range, t.base, t.is_view) for t in resp.tensors]
    items += [(a.name, "array", a.storage, a.byte_range, None, a.is_view) for a in resp.arrays]
    for name, kind, sid, rng, base, is_view in items:
        group = groups.get(sid) if sid else None
        text, shared = _verdict(name, kind, group, rng, base, is_view)
        out.append(Verdict(name, kind, index.get(name), sid, text, shared))
    return out


def _verdict(name, kind, group, rng, base, is_view) -> tuple[str, bool]:
    if group is None:
        return "no real storage (meta, sparse or nested tensor)", False
    others = [m for m in group.members if m.name != name]
    if not others:
        what = "a view of an unnamed tensor" if is_view else "own memory"
        return f"{what} - no other variable shares it", False
    same = [m.name for m in others if rng is not None and m.byte_range == rng]
    overlap = [m.name for m in others if m.name not in same and _meets(rng, m.byte_range)]
    apart = [m.name for m in others if m.name not in same and m.name not in overlap]
    parts = []
    if base:
        parts.append(f"view of {base}")
    elif is_view:
        parts.append("numpy view" if kind == "array" else "a view")
    if same:
        parts.append("same bytes as " + _names(same))
    if overlap:
        parts.append("overlaps " + _names(overlap))
    if apart:
        parts.append("same storage as " + _names(apart) + " (other bytes)")
    return "; ".join(parts) + " - writes through one show in the others", True


def _meets(a: list[int] | None, b: list[int]) -> bool:
    return a is not None and a[0] < b[1] and b[0] < a[1]


def _names(names: list[str]) -> str:
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
