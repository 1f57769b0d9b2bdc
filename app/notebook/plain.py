"""The static copy as it reads without its stylesheet.

Renderers that sanitize a notebook's HTML (GitHub's viewer, some static site builders) may strip
<style> and style attributes. The facts are text already (shapes, strides, offsets, ✓/✗ for
contiguity, the storage verdicts), but the stride and storage diagrams were coloured by CSS alone:
unstyled SVG fills every rect black, so the offsets written on the cells vanished, the cells a
tensor reads looked like the ones it does not, and the bars' names overlapped their bars. Each
rect and text of those diagrams gets the page's own paint as presentation attributes, which any
stylesheet overrides: with the CSS there, nothing changes.

The paint is read from static/app.css (its `.stride-svg ...` and `.storage-svg ...` rules, their
var()s resolved), not copied, so a colour changed for the page reaches this too. The markup is
our templates' (values escaped: a tag ends at its first `>`), and the diagrams nest one `<g>`
deep at most.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from markupsafe import escape

from app import page_css
from app.notebook import style

SVG_CLASSES = ("stride-svg", "storage-svg")
PAINT = ("fill", "stroke", "text-anchor", "font-size", "font-weight", "font-family")
_COMPOUND = re.compile(r"^([a-z]+)?((?:\.[\w-]+)*)$")
_TAG = re.compile(r"<(/?)(svg|g|rect|text)\b([^>]*)>")
_CLASS = re.compile(r'\sclass="([^"]*)"')
# Tags written side by side ("leaf" "Parameter"): CSS margins kept them apart, a text copy ran them
# together ("leafParameter").
_TAGS_TOUCHING = re.compile(r'</span>(?=<span class="(?:tag|muted)\b)')


class Part(NamedTuple):
    """One compound selector: an element name (or None) and classes."""

    element: str | None
    classes: frozenset[str]

    def matches(self, element: str, classes: set[str]) -> bool:
        return (self.element is None or self.element == element) and self.classes <= classes


class Rule(NamedTuple):
    svg: Part
    group: Part | None  # the enclosing <g>, where the selector names one
    target: Part
    paint: dict[str, str]


def unstyled_safe(html: str) -> str:
    """`html` (the static copy) with the diagrams' paint as attributes and touching tags apart."""
    return _TAGS_TOUCHING.sub("</span> ", _painted(html))


def _painted(html: str) -> str:
    svg: set[str] = set()
    group: set[str] = set()

    def one(m: re.Match[str]) -> str:
        nonlocal svg, group
        closing, name, attrs = m.group(1), m.group(2), m.group(3)
        named = _CLASS.search(attrs)
        classes = set(named.group(1).split()) if named else set()
        if name == "svg":
            svg = set() if closing else classes
        elif name == "g":
            group = set() if closing else classes
        if closing or not svg & set(SVG_CLASSES) or name in ("svg", "g"):
            return m.group(0)
        paint: dict[str, str] = {}
        for rule in rules():
            inside = rule.group is None or rule.group.matches("g", group)
            if rule.svg.matches("svg", svg) and inside and rule.target.matches(name, classes):
                paint.update(rule.paint)
        added = "".join(f' {k}="{escape(v)}"' for k, v in paint.items() if f" {k}=" not in attrs)
        self_closing = attrs.endswith("/")
        attrs = attrs[:-1] + added + "/" if self_closing else attrs + added
        return f"<{name}{attrs}>"

    return _TAG.sub(one, html)


@lru_cache(maxsize=1)
def rules() -> tuple[Rule, ...]:
    """The diagrams' rules of static/app.css, least specific first (as the cascade applies them)."""
    found: list[tuple[int, int, Rule]] = []
    for prelude, body in page_css.top_level_rules(page_css.source()):
        paint = _paint(body)
        for selector in style._split(prelude) if paint else []:
            rule = _rule(selector, paint)
            if rule is not None:
                parts = [rule.svg, rule.group, rule.target]
                weight = sum(len(p.classes) * 10 + (p.element is not None) for p in parts if p)
                found.append((weight, len(found), rule))
    return tuple(r for _w, _i, r in sorted(found))


def _paint(body: str) -> dict[str, str]:
    out = {}
    for prop, value in page_css.declarations(body):
        if prop in PAINT and "!important" not in value:
            value = page_css.resolved(value)
            out[prop] = value.removesuffix("px") if prop == "font-size" else value
    return out


def _rule(selector: str, paint: dict[str, str]) -> Rule | None:
    parts: list[Part] = []
    for compound in selector.split():
        m = _COMPOUND.match(compound)
        if m is None:  # a pseudo-class, an attribute, a combinator: not a diagram's plain paint
            return None
        parts.append(Part(m.group(1), frozenset(c for c in m.group(2).split(".") if c)))
    if len(parts) not in (2, 3) or not parts[0].classes & set(SVG_CLASSES) or parts[0].element:
        return None
    return Rule(parts[0], parts[1] if len(parts) == 3 else None, parts[-1], paint)
