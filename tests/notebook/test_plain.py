"""The static copy without its stylesheet (app.notebook.plain): what a renderer that strips
<style> and style attributes (GitHub's viewer, some sanitizers) still shows. The facts read as
text, and the diagrams keep the page's paint as attributes instead of turning black."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import torch

from app.notebook import display, panels, plain
from tests.notebook import kit


def stripped(html: str) -> str:
    """`html` as a sanitizer that drops every <style> element and style attribute leaves it."""
    return re.sub(r"\sstyle=\"[^\"]*\"", "", re.sub(r"<style\b.*?</style>", "", html, flags=re.S))


class Text(HTMLParser):
    """The text a reader sees: no <title> tooltips (they show on hover only)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self._skip += tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag == "title" and self._skip > 0

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def text_of(html: str) -> str:
    parser = Text()
    parser.feed(html)
    return re.sub(r"\s+", " ", "".join(parser.parts))


def _static() -> str:
    x = torch.arange(6).reshape(2, 3)
    lin = torch.nn.Linear(2, 2)
    namespace = {"x": x, "y": x.t(), "c": x[:, 1], "w": lin.weight}
    return stripped(display.fragment(panels.response_of(namespace), static=True))


def test_without_its_stylesheet_the_facts_still_read_as_text():
    html = _static()
    assert "<style" not in html and " style=" not in html
    rows = kit.rows_of(html)
    # Shape, stride, offset, contiguity (✓/✗ as characters, not a colour), storage.
    assert rows["y"][1:7] == ["(3, 2)", "int64", "(1, 3)", "0", "✗", "s0"]
    assert rows["c"][1:7] == ["(2,)", "int64", "(3,)", "1", "✗", "s0"]
    text = text_of(html)
    for caption in (
        "x: shape (2, 3), stride (3, 1), storage_offset 0",
        "c: shape (2,), stride (3,), storage_offset 1",
    ):
        assert caption in text
    assert "y: a view; same bytes as x; overlaps c" in text
    # Regression: "leaf" and "Parameter" were two tags kept apart by CSS margins only.
    assert "leaf Parameter" in text


def test_without_its_stylesheet_every_diagram_shows():
    figures = re.findall(r"<figure class=\"sd\"[^>]*>", _static())
    assert len(figures) == 4 and not any(" hidden" in f for f in figures)


def test_the_diagrams_keep_the_pages_paint_as_attributes():
    html = _static()
    # Regression: unstyled SVG fills a rect black, hiding the offset written on it.
    rects = re.findall(r"<rect\b[^>]*>", html.split('class="stride-svg"', 1)[1].split("</svg>", 1)[0])
    assert rects and all(' fill="#' in r for r in rects)
    # c = x[:, 1] reads storage cells 1 and 4: those are filled as the page fills read cells.
    paint = {
        rule.group.classes: rule.paint
        for rule in plain.rules()
        if rule.group and rule.target.element == "rect"
    }
    covered, free = paint[frozenset({"scell", "covered"})]["fill"], paint[frozenset({"scell"})]["fill"]
    assert covered != free
    strip = html.split("c: shape")[1].split("</svg>")[0]
    fills = re.findall(
        r'<g class="scell( covered)?" data-off="(\d)">\s*<title>[^<]*</title>\s*<rect [^>]*fill="([^"]*)"',
        strip,
    )
    assert [(off, fill) for _c, off, fill in fills] == [
        ("0", free),
        ("1", covered),
        ("2", free),
        ("3", free),
        ("4", covered),
        ("5", free),
    ]
    assert re.search(r'<text [^>]*text-anchor="middle"[^>]*>4</text>', strip)  # centred on its cell


def test_paint_read_from_the_page_stylesheet():
    rules = {(r.svg.classes, r.group.classes if r.group else None, r.target): r.paint for r in plain.rules()}
    cell = rules[(frozenset({"stride-svg"}), frozenset({"cell"}), plain.Part("rect", frozenset()))]
    assert cell == {"fill": "#eef2ff", "stroke": "#a5b4fc"}  # var(--accent-soft) resolved
    # A rule with !important or in an @media block is no plain paint.
    assert not any("!important" in v for p in rules.values() for v in p.values())


def test_paint_never_overrides_an_attribute_and_leaves_other_svgs_alone():
    html = (
        '<svg class="stride-svg"><g class="cell"><rect fill="red"/><text x="1">0</text></g></svg>'
        '<svg class="graph-svg"><rect/></svg>'
    )
    out = plain.unstyled_safe(html)
    assert '<rect fill="red" stroke="#a5b4fc"/>' in out
    assert '<svg class="graph-svg"><rect/></svg>' in out
    assert re.search(r'<text x="1" [^>]*text-anchor="middle"', out)
