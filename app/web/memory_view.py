"""The Memory panel's and the memory-over-steps chart's view models, from the ledger a run's
`memory` (and each step's `memory`) carries (app.schema_memory). No HTML: templates escape.

Bytes read as the page reads them: plain "B" below a thousand, then KB, MB, GB, TB in steps of
1,000 (the legend and every hover title also give the exact count, "4,004,000 B"). The work is
O(categories + devices + pinned) for the panel and O(steps) for the chart; the schema caps each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.schema_memory import CATEGORIES, Memory, MemoryTotals, PinnedStorage
from app.schema_steps import Step
from app.web.budget import check

PINNED_SHOWN = 5  # pinned storages called out in words; the rest are counted
HOLDERS_NAMED = 3  # names in "`a`, `b`, `c` and 4 more keep ..."
_UNITS = (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3))
LABELS = {
    "parameters": "parameters",
    "gradients": "gradients",
    "optimizer_state": "optimizer state",
    "buffers": "buffers",
    "tensors": "other tensors",
    "numpy": "numpy",
    "saved_for_backward": "saved for backward",
}
CHART_W, CHART_H = 300, 64  # the chart's own units (viewBox); it scales to its box
CHART_COLUMNS_MAX = 120  # past this many steps, a column shows the most of its steps
STACKED_STEPS_MAX = 60  # stacked by category up to this many steps; then one total per column


def bytes_text(n: int) -> str:
    """4 -> '4 B', 4096 -> '4.1 KB', 400_000_000 -> '400 MB'."""
    for unit, scale in _UNITS:
        if n >= scale:
            return f"{n / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} B"


def exact_text(n: int) -> str:
    return f"{n:,} B"


@dataclass
class Segment:
    category: str  # one of CATEGORIES (also the CSS class)
    label: str
    nbytes: int
    percent: float  # of the bar's total, for its width

    @property
    def text(self) -> str:
        return bytes_text(self.nbytes)

    @property
    def exact(self) -> str:
        return exact_text(self.nbytes)


@dataclass
class Bar:
    """One stacked bar: the run's, or one device's."""

    title: str
    total: int
    segments: list[Segment]  # the non-empty categories, in CATEGORIES order

    @property
    def total_text(self) -> str:
        return bytes_text(self.total)

    @property
    def exact(self) -> str:
        return exact_text(self.total)

    @property
    def summary(self) -> str:
        """The bar in words (its accessible name)."""
        parts = ", ".join(f"{s.label} {s.text}" for s in self.segments) or "nothing"
        return f"{self.title}: {self.total_text} in all ({parts})"


@dataclass
class Pinned:
    """One storage kept whole by views that use part of it, in words."""

    storage: str
    holders: list[str]  # the names shown
    holders_more: int  # names not shown, counted
    nbytes: int
    used_bytes: int

    @property
    def verb(self) -> str:
        return "keeps" if len(self.holders) + self.holders_more == 1 else "keep"

    @property
    def whole_text(self) -> str:
        return bytes_text(self.nbytes)

    @property
    def used_text(self) -> str:
        return bytes_text(self.used_bytes)


@dataclass
class MemoryView:
    bar: Bar
    devices: list[Bar]  # per device, only when the run used more than one
    pinned: list[Pinned]
    pinned_more: int  # pinned storages not called out
    pinned_bytes: int

    @property
    def pinned_text(self) -> str:
        return bytes_text(self.pinned_bytes)

    @property
    def pinned_exact(self) -> str:
        return exact_text(self.pinned_bytes)


def build(memory: Memory | None) -> MemoryView | None:
    """The panel of a run's ledger; None when the run has none (the panel says so)."""
    if memory is None:
        return None
    devices = [bar_of(str(d), t) for d, t in memory.by_device.items()] if len(memory.by_device) > 1 else []
    return MemoryView(
        bar=bar_of("All memory", memory),
        devices=devices,
        pinned=[_pinned(p) for p in memory.pinned[:PINNED_SHOWN]],
        pinned_more=max(0, len(memory.pinned) - PINNED_SHOWN),
        pinned_bytes=memory.pinned_bytes,
    )


def memory_at(step: Step) -> Memory | None:
    """The ledger after one step, for the panels at that step: its totals (which storages views
    pin is known of the final snapshot only, so none is listed)."""
    if step.memory is None:
        return None
    return Memory.model_construct(
        total_bytes=step.memory.total_bytes,
        by_category=step.memory.by_category,
        pinned=[],
        pinned_bytes=0,
        by_device={},
    )


def bar_of(title: str, totals: MemoryTotals) -> Bar:
    whole = max(1, totals.total_bytes)
    segments = [
        Segment(c, LABELS[c], n, round(100 * n / whole, 3))
        for c in CATEGORIES
        if (n := getattr(totals.by_category, c))
    ]
    return Bar(title, totals.total_bytes, segments)


def _pinned(p: PinnedStorage) -> Pinned:
    check()
    return Pinned(
        p.storage,
        p.names[:HOLDERS_NAMED],
        max(0, len(p.names) - HOLDERS_NAMED),
        p.nbytes,
        p.used_bytes,
    )


@dataclass
class Column:
    """The chart's column of one step (or of several, past CHART_COLUMNS_MAX steps)."""

    x: float
    width: float
    first: int  # 0-based steps it covers, first..last
    last: int
    total: int | None  # the most bytes of its steps; None: no step of it was measured
    rects: list[tuple[str, float, float]]  # (category, y, height), bottom up; [] when unknown

    @property
    def title(self) -> str:
        steps = (
            f"step {self.first + 1}" if self.first == self.last else f"steps {self.first + 1}-{self.last + 1}"
        )
        return f"{steps}: " + ("not measured" if self.total is None else bytes_text(self.total))


@dataclass
class MemoryChart:
    steps: int
    columns: list[Column]
    peak: int
    stacked: bool
    measured: int  # steps with a measurement
    categories: list[str]  # those drawn, for the legend

    def marker_x(self, current: int) -> float:
        """Where the marker of step `current` (0-based) stands; app.js moves it the same way."""
        return round((max(0, min(current, self.steps - 1)) + 0.5) * CHART_W / max(1, self.steps), 2)

    @property
    def summary(self) -> str:
        if not self.measured:
            return f"Memory over {self.steps} steps: not measured."
        return f"Memory over {self.steps} steps: at most {bytes_text(self.peak)}."

    @property
    def legend(self) -> list[tuple[str, str]]:
        """(category, label) of the categories drawn, in ledger order."""
        return [(c, LABELS.get(c, "total")) for c in self.categories]

    @property
    def peak_text(self) -> str:
        return bytes_text(self.peak)


def steps_chart(steps: Sequence[Step]) -> MemoryChart | None:
    """The chart of a traced run's steps; None when no step was measured (an outline trace):
    the page then fetches it (app.web.memory_routes) once the timeline is used."""
    totals = [s.memory for s in steps]
    return chart(totals) if any(t is not None for t in totals) else None


def chart(totals: Sequence[MemoryTotals | None]) -> MemoryChart | None:
    """The chart of per-step totals (None: that step was not measured); None for no steps.
    O(steps): each step is looked at once, and at most CHART_COLUMNS_MAX columns are drawn."""
    n = len(totals)
    if not n:
        return None
    peak = max((t.total_bytes for t in totals if t is not None), default=0)
    stacked = n <= STACKED_STEPS_MAX
    per = -(-n // CHART_COLUMNS_MAX)  # steps per column
    width = CHART_W / n
    columns = []
    for first in range(0, n, per):
        check()
        chunk = totals[first : first + per]
        columns.append(_column(chunk, first, width, peak, stacked))
    drawn = {r[0] for c in columns for r in c.rects}
    return MemoryChart(
        steps=n,
        columns=columns,
        peak=peak,
        stacked=stacked,
        measured=sum(t is not None for t in totals),
        categories=[c for c in (*CATEGORIES, "total") if c in drawn],
    )


def _column(
    chunk: Sequence[MemoryTotals | None], first: int, width: float, peak: int, stacked: bool
) -> Column:
    known = [t for t in chunk if t is not None]
    x, w = round(first * width, 2), round(width * len(chunk), 2)
    last = first + len(chunk) - 1
    if not known:
        return Column(x, w, first, last, None, [])
    top = max(known, key=lambda t: t.total_bytes)
    scale = CHART_H / max(1, peak)
    parts = (
        [(c, getattr(top.by_category, c)) for c in CATEGORIES] if stacked else [("total", top.total_bytes)]
    )
    rects, y = [], float(CHART_H)
    for category, nbytes in parts:
        if nbytes:
            h = nbytes * scale
            y -= h
            rects.append((category, round(y, 2), round(h, 2)))
    return Column(x, w, first, last, top.total_bytes, rects)
