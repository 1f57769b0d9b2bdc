"""The panels by name: one list for the embed's `?panels=` and the per-panel downloads.

Each name is a card on the page (`<section id="{name}-card">`, templates/_panels.html). The order
is the page's, so an embed that asks for `graph,tensors` still shows the tensors first.
"""

from __future__ import annotations

PANELS: tuple[str, ...] = ("tensors", "strides", "storage", "memory", "graph", "modules", "calls")
DEFAULT_EMBED_PANELS: tuple[str, ...] = ("tensors", "strides", "storage", "graph")


def card_id(name: str) -> str:
    """The id of the panel's card in the page."""
    return f"{name}-card"


def parse_panels(value: str | None) -> tuple[str, ...]:
    """`tensors,graph` as the known panels it names, in the page's order; ValueError naming what is
    not a panel. None or blank: the default set."""
    if value is None or not value.strip():
        return DEFAULT_EMBED_PANELS
    asked = [p.strip() for p in value.split(",") if p.strip()]
    unknown = [p for p in asked if p not in PANELS]
    if unknown:
        shown = ", ".join(repr(p[:40]) for p in unknown[:5])
        raise ValueError(f"not a panel: {shown}; the panels are {', '.join(PANELS)}")
    return tuple(p for p in PANELS if p in asked)
