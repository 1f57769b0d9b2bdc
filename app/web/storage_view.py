"""Shared-storage picture: one strip per storage group with each member's byte range, and a
verdict per variable (a view of which other, sharing with a numpy array, or its own copy)."""

from __future__ import annotations

import unicodedata
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from itertools import islice

from app.schemas import RunResponse, StorageInfo
from app.web.budget import check

NAME_W, BAR_W, ROW_H = 130, 420, 20
# A bar's name is drawn right-aligned at x=124 in an 11 px monospace font (6.6 px a column): 17
# columns fit with a margin; an East Asian wide character takes two, a combining mark none.
LABEL_COLS = 17
STRIPS_MAX, MEMBERS_MAX = 12, 12
NAMED, SCAN = 4, 64  # names printed per kind of neighbour; members looked at for them


@dataclass(frozen=True)
class Bar:
    name: str
    kind: str
    idx: int | None  # row index in the Tensors table (for focus), if known
    x: float
    w: float
    y: int
    start: int
    end: int
    label: str = ""  # the name as drawn: cut to LABEL_COLS columns (the full name is its title)


def short_label(name: str, cols: int = LABEL_COLS) -> str:
    """`name` cut to `cols` monospace columns, with a trailing … when cut: a cut by characters
    let a name of wide characters (CJK) run past the SVG's left edge, where it was clipped."""
    widths = [_columns(c) for c in name[: cols + 1]]
    if sum(widths) <= cols and len(name) <= cols:
        return name
    out, used = [], 0
    for c, w in zip(name, widths, strict=False):
        if used + w > cols - 1:
            break
        out.append(c)
        used += w
    return "".join(out) + "…"


def _columns(c: str) -> int:
    if unicodedata.combining(c):
        return 0
    return 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


@dataclass
class Strip:
    id: str
    device: str
    nbytes: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    hidden: int = 0  # members not drawn


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
        check()
        size = max(1, s.nbytes)
        scale = BAR_W / size
        strip = Strip(s.id, s.device, s.nbytes, height=0, hidden=max(0, len(s.members) - MEMBERS_MAX))
        for k, m in enumerate(s.members[:MEMBERS_MAX]):
            # Clamped to the storage: a claimed byte 10**400 would not even convert to a float.
            start, end = (min(max(0, v), size) for v in _span(m.byte_range))
            # Keep tiny ranges visible: at least 3 px wide.
            strip.bars.append(
                Bar(
                    m.name,
                    m.kind,
                    index.get(m.name),
                    NAME_W + start * scale,
                    max(3.0, (end - start) * scale),
                    22 + k * ROW_H,
                    start,
                    end,
                    short_label(m.name),
                )
            )
        strip.height = 22 + len(strip.bars) * ROW_H + 4
        out.append(strip)
    return out, max(0, len(storages) - STRIPS_MAX)


def verdicts(resp: RunResponse, index: dict[str, int]) -> list[Verdict]:
    """One verdict per tensor and array: O(log m) per verdict on a storage of m members (it was
    three nested scans of the members: 2,000 members took 39 s)."""
    groups: dict[str, _Group] = {}
    for s in resp.storages:
        groups.setdefault(s.id, _Group(s))
    out = []
    items = [(t.name, "tensor", t.storage, t.byte_range, t.base, t.is_view) for t in resp.tensors]
    items += [(a.name, "array", a.storage, a.byte_range, None, a.is_view) for a in resp.arrays]
    for name, kind, sid, rng, base, is_view in items:
        check()
        group = groups.get(sid) if sid else None
        text, shared = _verdict(name, kind, group, rng, base, is_view)
        out.append(Verdict(name, kind, index.get(name), sid, text, shared))
    return out


class _Group:
    """One storage's members indexed once, so each verdict counts its neighbours by bisection.

    Counts are exact; the names printed (at most NAMED of each kind) come from the first
    SCAN members, which is all of them in any real snapshot."""

    def __init__(self, storage: StorageInfo) -> None:
        self.ranges: dict[str, tuple[int, int]] = {}
        for m in storage.members:  # a name listed twice counts once
            self.ranges.setdefault(m.name, _span(m.byte_range))
        self.same: dict[tuple[int, int], list[str]] = {}
        for name, span in self.ranges.items():
            self.same.setdefault(span, []).append(name)
        self.starts = sorted(lo for lo, _ in self.ranges.values())
        self.ends = sorted(hi for _, hi in self.ranges.values())
        self.head = list(islice(self.ranges.items(), SCAN))

    def meeting(self, span: tuple[int, int]) -> int:
        """Members whose bytes meet `span` (as _meets): start < hi and end > lo."""
        lo, hi = span
        # Every member ending at or before lo also starts before hi, except the empty ones
        # sitting exactly at lo when span is empty there too.
        before = bisect_right(self.ends, lo) - (len(self.same.get(span, ())) if lo == hi else 0)
        return bisect_left(self.starts, hi) - before


def _verdict(name, kind, group: _Group | None, rng, base, is_view) -> tuple[str, bool]:
    if group is None:
        return "no real storage (meta, sparse or nested tensor)", False
    own = group.ranges.get(name)
    others = len(group.ranges) - (own is not None)
    if not others:
        what = "a view of an unnamed tensor" if is_view else "own memory"
        return f"{what} - no other variable shares it", False
    span = _span(rng) if rng is not None else None
    bucket = group.same.get(span, []) if span else []
    same_n = len(bucket) - (own is not None and own == span)
    overlap_n = 0
    if span is not None:
        meets = group.meeting(span) - (own is not None and _meets(span, own))
        overlap_n = meets - (same_n if span[0] < span[1] else 0)
    apart_n = others - same_n - overlap_n
    named = _named(group, name, span)
    parts = []
    if base:
        parts.append(f"view of {base}")
    elif is_view:
        parts.append("numpy view" if kind == "array" else "a view")
    if same_n:
        same = [n for n in bucket[: NAMED + 1] if n != name][:NAMED]
        parts.append("same bytes as " + _names(same, same_n))
    if overlap_n:
        parts.append("overlaps " + _names(named.overlap, overlap_n))
    if apart_n:
        parts.append("same storage as " + _names(named.apart, apart_n) + " (other bytes)")
    return "; ".join(parts) + " - writes through one show in the others", True


@dataclass
class _Named:
    overlap: list[str] = field(default_factory=list)
    apart: list[str] = field(default_factory=list)


def _named(group: _Group, name: str, span) -> _Named:
    """Up to NAMED overlapping and NAMED apart members, in member order, from the first SCAN."""
    out = _Named()
    for other, other_span in group.head:
        if other == name or other_span == span:
            continue
        bucket = out.overlap if span is not None and _meets(span, other_span) else out.apart
        if len(bucket) < NAMED:
            bucket.append(other)
    return out


def _span(rng) -> tuple[int, int]:
    """(low, high) of a claimed byte range, whatever its order or length."""
    if not rng:
        return 0, 0
    return min(rng[0], rng[-1]), max(rng[0], rng[-1])


def _meets(a, b) -> bool:
    return a is not None and a[0] < b[1] and b[0] < a[1]


def _names(shown: list[str], total: int) -> str:
    if not shown:
        return f"{total} other{'s' if total > 1 else ''}"
    return ", ".join(shown) + (f" and {total - len(shown)} more" if total > len(shown) else "")
