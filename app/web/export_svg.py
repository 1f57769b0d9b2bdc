"""Standalone SVG documents of the panels: the pieces a panel is drawn from (the page's own SVG
drawings, tables and lines of text), stacked into one document that opens on its own.

A downloaded SVG is opened by other programs (an image viewer, a slide deck, Inkscape), with no
page and no stylesheet around it: the document declares its namespace and size, carries its
styles inline (the page's drawing rules taken from static/app.css, with the custom properties
resolved, since not every SVG reader knows `var()`), and names generic font families. Nothing
in it is fetched and nothing runs: no script, no foreignObject, no href. Text is escaped for XML
here, and characters XML 1.0 cannot hold (a name may have any) are replaced in the finished
document, so every export parses as XML.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

from markupsafe import escape

from app import page_css
from app.web.budget import check
from app.web.storage_view import short_label

SVG_NS = "http://www.w3.org/2000/svg"
PAD, GAP = 16, 14  # around the document, between its pieces (px)
TITLE_H = 26  # the document's title line
CHAR_W = 7.3  # one column of 12 px monospace text (DejaVu Sans Mono: 0.602 em)
ROW_H, CELL_PAD = 20, 10  # a table row; room on each side of a cell's text
CELL_COLS_MAX = 60  # of one table cell; longer text is cut with …
LINE_COLS_MAX = 160  # of one line of text
PT_PX = 4 / 3  # Graphviz sizes its drawing in points
# The page's drawing rules, by selector prefix; .hot, .focus and .chg- are its hover, focus and
# change highlights, which a picture of the panel has no use for.
DRAWING_SCOPES = (".stride-svg", ".storage-svg", ".graph-svg", ".seg-")
_INTERACTIVE = re.compile(r"\.hot|\.focus|\.chg-|:")
SVG_PROPERTIES = frozenset(
    {"fill", "stroke", "stroke-width", "font-family", "font-size", "font-weight", "text-anchor"}
)
# Not allowed in an XML 1.0 document, escaped or not: C0 controls (but tab and newlines), lone
# surrogates, U+FFFE and U+FFFF.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ROOT_SIZE = re.compile(r'<svg\b[^>]*?\bwidth="([0-9.]+)(pt|px)?"[^>]*?\bheight="([0-9.]+)(pt|px)?"')
# The export's own rules: its title, tables and lines of text.
OWN_RULES = """
.x-title {{ font: 600 15px {sans}; fill: {ink}; }}
.x-text, .x-table text {{ font-family: {mono}; font-size: 12px; fill: {ink}; }}
.x-table .x-head {{ font-weight: 600; fill: {muted}; }}
.x-caption {{ font-family: {sans}; font-size: 12.5px; fill: {ink}; }}
.x-note {{ font-family: {sans}; font-size: 12px; fill: {muted}; }}
.x-rule {{ stroke: {line}; stroke-width: 1; }}
.x-band {{ fill: {band}; }}
"""
SANS = 'system-ui, "DejaVu Sans", "Segoe UI", sans-serif'


class Piece(NamedTuple):
    """A part of a document: SVG markup drawn from (0, 0), and the size it takes."""

    markup: str
    width: float
    height: float


class Table(NamedTuple):
    """A table panel's rows as text (the export escapes them)."""

    headers: Sequence[str]
    rows: Sequence[Sequence[str]]


def text_columns(text: str) -> int:
    """Monospace columns `text` takes: a wide (CJK) character two, a combining mark none."""
    wide = ("W", "F")
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in wide else 1 for c in text
    )


def xml_text(text: str, cols: int = CELL_COLS_MAX) -> str:
    """`text` cut to `cols` columns, escaped for an XML text node or attribute."""
    return str(escape(short_label(text, cols)))


def xml_clean(document: str) -> str:
    """The document with every character XML cannot hold replaced by U+FFFD."""
    return _NOT_XML.sub("\ufffd", document)


def table(t: Table) -> Piece:
    """The table as SVG text in columns sized to their widest cell, with a rule under the head
    and every other row banded."""
    cells = [[short_label(c, CELL_COLS_MAX) for c in row] for row in [t.headers, *t.rows]]
    widths = [0.0] * len(t.headers)
    for row in cells:
        check()
        for i, c in enumerate(row[: len(widths)]):
            widths[i] = max(widths[i], text_columns(c) * CHAR_W + 2 * CELL_PAD)
    total = sum(widths)
    out = ['<g class="x-table">']
    for r, row in enumerate(cells):
        y = r * ROW_H
        if r and r % 2 == 0:
            out.append(f'<rect class="x-band" x="0" y="{y}" width="{total:.1f}" height="{ROW_H}"/>')
        x = 0.0
        head = ' class="x-head"' if r == 0 else ""
        for i, c in enumerate(row[: len(widths)]):
            out.append(f'<text{head} x="{x + CELL_PAD:.1f}" y="{y + 14}">{escape(c)}</text>')
            x += widths[i]
    out.append(f'<line class="x-rule" x1="0" x2="{total:.1f}" y1="{ROW_H}" y2="{ROW_H}"/>')
    out.append("</g>")
    return Piece("".join(out), total, len(cells) * ROW_H)


def lines(texts: Sequence[str], css: str = "x-text") -> Piece:
    """Lines of text, one under the other (each cut to LINE_COLS_MAX columns)."""
    out, width = [], 0.0
    for i, t in enumerate(texts):
        check()
        shown = short_label(t, LINE_COLS_MAX)
        width = max(width, text_columns(shown) * CHAR_W)
        out.append(f'<text class="{css}" x="0" y="{i * 18 + 13}">{escape(shown)}</text>')
    return Piece("".join(out), width, len(texts) * 18)


def sized(markup: str) -> Piece:
    """An SVG drawing that says its size on its root (Graphviz's, in points)."""
    found = _ROOT_SIZE.search(markup)
    if found is None:
        return Piece(str(markup), 0.0, 0.0)
    w, w_unit, h, h_unit = found.groups()
    return Piece(str(markup), float(w) * _px(w_unit), float(h) * _px(h_unit))


def _px(unit: str | None) -> float:
    return PT_PX if unit == "pt" else 1.0


def document(title: str, pieces: Sequence[Piece]) -> str:
    """One standalone SVG: the title, then the pieces stacked top to bottom."""
    body, y, width = [], float(PAD + TITLE_H), float(text_columns(title) * 9)
    for p in pieces:
        check()
        body.append(f'<g transform="translate({PAD},{y:.1f})">{p.markup}</g>')
        y += p.height + GAP
        width = max(width, p.width)
    w, h = round(width + 2 * PAD), round(y - GAP + PAD)
    head = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="{SVG_NS}" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}"><style>{stylesheet()}</style>'
        f'<rect x="0" y="0" width="{w}" height="{h}" fill="#ffffff"/>'
        f'<text class="x-title" x="{PAD}" y="{PAD + 14}">{xml_text(title, LINE_COLS_MAX)}</text>'
    )
    return xml_clean(head + "".join(body) + "</svg>\n")


@lru_cache(maxsize=1)
def stylesheet() -> str:
    """The page's drawing rules (static/app.css) with their colours resolved, and the export's own.
    Taken from the page's stylesheet when first asked for, so a colour changed there changes here."""
    out = []
    for prelude, body in page_css.top_level_rules(page_css.source()):
        selectors = [s.strip() for s in prelude.split(",")]
        if not all(s.startswith(DRAWING_SCOPES) and not _INTERACTIVE.search(s) for s in selectors):
            continue
        kept = [f"{k}: {_resolved(v)}" for k, v in page_css.declarations(body) if k in SVG_PROPERTIES]
        if kept:
            out.append(f"{', '.join(selectors)} {{ {'; '.join(kept)}; }}")
    colours = {k: _resolved(f"var(--{k})") for k in ("ink", "muted", "line", "mono")}
    own = OWN_RULES.format(sans=SANS, band="#f9fafb", **colours)
    return "\n".join(out) + own


def _resolved(value: str) -> str:
    return page_css.resolved(value, missing="inherit")
