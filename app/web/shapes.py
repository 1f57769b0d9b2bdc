"""The one way the page writes a shape or a stride: Python's tuple, "(2, 3)", "(3,)", "()".

Tuple style because it is what a learner gets from `tuple(t.shape)` or `x.stride()` and can paste
back into code; "(3)" is no tuple in Python but the number 3. Every panel (tensor rows, the
modules panel, graph labels, the timeline's notes and the error explanations) goes through
shape_text, so one tensor reads the same everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

ELIDED = "…"


def shape_text(dims: Sequence[int], shown_max: int | None = None, digits_max: int | None = None) -> str:
    """`dims` as a tuple. Where the room is bounded (a graph node's label): past `shown_max`
    dimensions one "…" stands for the rest, and a dimension of more than `digits_max` digits
    is written "…"."""
    shown = dims if shown_max is None else dims[:shown_max]
    bound = None if digits_max is None else 10**digits_max
    parts = [ELIDED if bound is not None and abs(d) >= bound else str(d) for d in shown]
    if len(shown) < len(dims):
        parts.append(ELIDED)
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
