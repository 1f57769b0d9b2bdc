"""Geometry of the stride diagram: which storage cell each logical element reads.

Pure functions of (shape, stride, storage_offset, ...) so every case - transposed, sliced,
expanded (stride 0), dtype views - is unit-tested without a browser. The template only
draws the boxes computed here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from math import prod

CELL_W, CELL_H = 40, 26  # one logical element / one storage cell, in SVG px
HEAD_W, HEAD_H = 34, 18  # room for row / column index labels
STRIP_PER_ROW = 16  # storage cells per strip row (wrapping keeps the SVG narrow)
STRIP_MAX = 64  # storage cells drawn at most
GRID_ROWS_MAX, GRID_COLS_MAX, BLOCKS_MAX = 6, 8, 3
STRIP_TITLE_W = 420  # room for the strip's caption
ENUMERATE_MAX = 20_000  # enumerate every element's offset only below this numel
DIMS_DRAWN_MAX = 64  # the public schema's most dimensions
# Python ints are unbounded: a forged 10**4000 stride would make every product and str() cost
# thousands of digits (and str() of a product past 4300 digits raises). Torch's are int64.
VALUE_MAX = 2**63


@dataclass(frozen=True)
class GridCell:
    x: int
    y: int
    index: tuple[int, ...]
    offset: int
    formula: str


@dataclass(frozen=True)
class Label:
    x: int
    y: int
    text: str


@dataclass(frozen=True)
class StripCell:
    x: int
    y: int
    offset: int
    readers: int  # logical elements reading this cell (>1 when expanded)


@dataclass
class StrideDiagram:
    width: int
    height: int
    cells: list[GridCell] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    strip: list[StripCell] = field(default_factory=list)
    strip_y: int = 0
    notes: list[str] = field(default_factory=list)


def element_offset(index: tuple[int, ...], stride: list[int], storage_offset: int) -> int:
    return storage_offset + sum(i * s for i, s in zip(index, stride, strict=False))


def offset_formula(index: tuple[int, ...], stride: list[int], storage_offset: int) -> str:
    """The hover text: ``offset = 2 + 1·3 + 0·1 = 5`` - the whole rule, not just the answer."""
    terms = " + ".join(f"{i}·{s}" for i, s in zip(index, stride, strict=False))
    total = element_offset(index, stride, storage_offset)
    if not terms:
        return f"offset = storage_offset = {total}"
    return f"offset = {storage_offset} + {terms} = {total}"


def axis_indices(size: int, limit: int) -> list[int | None]:
    """Indices drawn along one axis; ``None`` marks the elided middle of a long axis."""
    if size <= limit:
        return list(range(size))
    head = (limit + 1) // 2
    tail = limit - head
    return list(range(head)) + [None] + list(range(size - tail, size))


def undrawable(shape: list[int], stride: list[int], storage_offset: int) -> str | None:
    """Why this geometry cannot be drawn (no torch tensor has it), or None. Checked before any
    loop: the renderer trusts nothing a worker claims, the schema's checks included."""
    if len(shape) > DIMS_DRAWN_MAX:
        return f"{len(shape)} dimensions (the diagram draws up to {DIMS_DRAWN_MAX})"
    if len(stride) != len(shape):
        return f"{len(stride)} strides for {len(shape)} dimensions"
    if any(n < 0 for n in shape):
        return "a negative size"
    if any(abs(v) >= VALUE_MAX for v in (*shape, *stride, storage_offset)):
        return "a size, stride or offset beyond 64 bits"
    return None


def element_count(shape: list[int]) -> int | None:
    """prod(shape), or None for a negative size: prod([10**30, -1]) is negative, and a count
    trusted from it enumerated 10**30 offsets."""
    return None if any(n < 0 for n in shape) else prod(shape)


def covered_offsets(
    shape: list[int], stride: list[int], storage_offset: int, limit: int = ENUMERATE_MAX
) -> Counter | None:
    """How many logical elements read each storage offset; None when there are too many to list.
    The work is at most ndim x limit: each pass grows the Counter to at most the element count."""
    numel = element_count(shape)
    if numel is None or numel > limit:
        return None
    counts: Counter = Counter({storage_offset: 1}) if numel else Counter()
    for size, step in zip(shape, stride, strict=False):
        grown: Counter = Counter()
        for off, n in counts.items():
            for i in range(size):
                grown[off + i * step] += n
        counts = grown
    return counts


def mergeable_dims(shape: list[int], stride: list[int]) -> list[bool]:
    """For each adjacent pair (d, d+1): can one stride walk both?  This is what ``view`` needs."""
    return [
        shape[d] == 1 or shape[d + 1] == 1 or stride[d] == stride[d + 1] * shape[d + 1]
        for d in range(min(len(shape), len(stride)) - 1)
    ]


def offset_span(shape: list[int], stride: list[int], storage_offset: int) -> tuple[int, int]:
    """Lowest and highest offset read (numpy views may have negative strides)."""
    lo = hi = storage_offset
    for n, s in zip(shape, stride, strict=False):
        reach = (n - 1) * s if n > 0 else 0
        lo, hi = (lo + reach, hi) if reach < 0 else (lo, hi + reach)
    return lo, hi


def layout(
    shape: list[int], stride: list[int], storage_offset: int, *, storage_cells: int | None = None
) -> StrideDiagram:
    """Grid of logical elements (blocks for leading dims) above a wrapped storage strip.

    ``storage_cells``: length of the tensor's storage in its own element units, when known
    (a dtype view of a bigger storage has more cells than it reads).
    """
    diagram = StrideDiagram(width=0, height=0)
    reason = undrawable(shape, stride, storage_offset)
    if reason is not None:
        diagram.notes.append(f"not drawn: {reason}")
        return diagram
    if 0 in shape:
        diagram.notes.append("empty tensor: it has no elements, so it reads no storage cells")
    y = _grid(diagram, shape, stride, storage_offset) if 0 not in shape else 0
    lo, hi = offset_span(shape, stride, storage_offset) if 0 not in shape else (storage_offset,) * 2
    total = max(storage_cells or 0, hi + 1)
    counts = covered_offsets(shape, stride, storage_offset)
    if counts is None:
        counts = Counter(c.offset for c in diagram.cells)
        diagram.notes.append(
            "tensor too big to list every element: the strip marks the cells read by the drawn elements only"
        )
    _strip(diagram, counts, total, max(0, lo), y + 14)
    return diagram


def _grid(d: StrideDiagram, shape: list[int], stride: list[int], off: int) -> int:
    """Draw the logical grid; returns the y where it ends."""
    lead_shape, (rows, cols) = shape[:-2], _last_two(shape)
    lead = [()] if not lead_shape else _lead_indices(lead_shape)
    row_ix = axis_indices(rows, GRID_ROWS_MAX)
    col_ix = axis_indices(cols, GRID_COLS_MAX)
    if len(row_ix) < rows or len(col_ix) < cols or len(lead) < prod(lead_shape):
        d.notes.append(
            f"big tensor: drawing {_kept(row_ix)}×{_kept(col_ix)} of {rows}×{cols} "
            "elements per slice"
            + (
                f", {sum(1 for b in lead if b is not None)} of {prod(lead_shape)} slices"
                if lead_shape
                else ""
            )
        )
    y = 0
    for block in lead:
        if block is None:
            d.labels.append(Label(HEAD_W, y + 14, "⋮ more slices"))
            y += HEAD_H + 4
            continue
        if lead_shape:
            d.labels.append(Label(0, y + 13, "[" + ", ".join(map(str, block)) + ", :, :]"))
            y += HEAD_H
        y = _block(d, shape, stride, off, block, row_ix, col_ix, y) + 10
    d.width = max(d.width, HEAD_W + len(col_ix) * CELL_W)
    return y


def _block(d, shape, stride, off, block, row_ix, col_ix, y) -> int:
    ndim = len(shape)
    for c, j in enumerate(col_ix):
        if ndim >= 1:
            d.labels.append(Label(HEAD_W + c * CELL_W + CELL_W // 2, y + 13, "…" if j is None else str(j)))
    y += HEAD_H
    for r, i in enumerate(row_ix):
        if ndim >= 2:
            d.labels.append(Label(HEAD_W - 6, y + r * CELL_H + 17, "⋮" if i is None else str(i)))
        for c, j in enumerate(col_ix):
            if i is None or j is None:
                continue
            index = block + tuple(k for k, keep in ((i, ndim >= 2), (j, ndim >= 1)) if keep)
            d.cells.append(
                GridCell(
                    HEAD_W + c * CELL_W,
                    y + r * CELL_H,
                    index,
                    element_offset(index, stride, off),
                    offset_formula(index, stride, off),
                )
            )
    return y + len(row_ix) * CELL_H


def _strip(d: StrideDiagram, counts: Counter, total: int, off: int, y: int) -> None:
    start = 0 if total <= STRIP_MAX else max(0, min(off, total - STRIP_MAX))
    stop = min(total, start + STRIP_MAX)
    if start or stop < total:
        d.notes.append(f"storage has {total} cells: drawing cells {start}–{stop - 1}")
    d.strip_y = y
    y += HEAD_H
    for k, offset in enumerate(range(start, stop)):
        row, col = divmod(k, STRIP_PER_ROW)
        d.strip.append(StripCell(col * CELL_W, y + row * (CELL_H + 16), offset, counts.get(offset, 0)))
    rows = max(1, -(-(stop - start) // STRIP_PER_ROW))
    d.width = max(d.width, min(stop - start, STRIP_PER_ROW) * CELL_W, STRIP_TITLE_W)
    d.height = y + rows * (CELL_H + 16)


def _last_two(shape: list[int]) -> tuple[int, int]:
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return 1, shape[0]
    return shape[-2], shape[-1]


def _lead_indices(lead_shape: list[int]) -> list[tuple[int, ...] | None]:
    """Leading-dim index tuples in row-major order, head and tail kept, middle elided."""
    total = prod(lead_shape)
    picks = axis_indices(total, BLOCKS_MAX)
    return [None if p is None else _unravel(p, lead_shape) for p in picks]


def _unravel(flat: int, shape: list[int]) -> tuple[int, ...]:
    out = []
    for n in reversed(shape):
        flat, r = divmod(flat, n)
        out.append(r)
    return tuple(reversed(out))


def _kept(ix: list[int | None]) -> int:
    return sum(1 for i in ix if i is not None)
