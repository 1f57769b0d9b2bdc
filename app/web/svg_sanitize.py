"""Graphviz's SVG through an allow list before the page inlines it.

The DOT handed to ``dot`` is built from server-made ids and escaped labels, so its SVG should
already be harmless; this is the second wall, for the day a label escape or Graphviz itself gets
something wrong. The SVG is parsed with expat (no DOCTYPE, so no entities, internal or external),
and a new document is written from what the parse saw: only the elements dot really emits, only
their presentation attributes, each value matched against a strict pattern (numbers, colours,
path data), and text re-escaped. Anything else is dropped - ``<script>``, ``<style>``,
``<foreignObject>``, ``<use>``, ``<image>``, every ``on*``, ``href``, ``xlink:href`` and ``style``
attribute - and an ``<a>`` is unwrapped (its children stay, the link goes). Input size, element
count and nesting depth are capped, so the work is linear in a bounded input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NoReturn
from xml.parsers import expat

SVG_BYTES_MAX = 4 * 1024 * 1024  # dot's drawing of DRAW_MAX boxes is ~100 KB at the name caps
ELEMENTS_MAX = 20_000
DEPTH_MAX = 32
SVG_NS = "http://www.w3.org/2000/svg"

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_LENGTH = re.compile(rf"{_NUM}(?:pt|px)?")
_NUMBER = re.compile(_NUM)
_VIEWBOX = re.compile(rf"{_NUM}(?:[ ,]+{_NUM}){{3}}")
_COLOUR = re.compile(r"none|transparent|#[0-9a-fA-F]{3,8}|[a-zA-Z]{1,24}")
_POINTS = re.compile(r"[-+0-9.eE, \t\r\n]{0,200000}")
_PATH = re.compile(r"[MmLlHhVvCcSsQqTtAaZz\-+0-9.eE, \t\r\n]{0,200000}")
_TRANSFORM = re.compile(
    rf"(?:\s*(?:scale|rotate|translate|matrix)\(\s*{_NUM}(?:[ ,]+{_NUM}){{0,5}}\s*\))+\s*"
)
_DASHES = re.compile(r"[0-9., ]{1,100}")
_FONT = re.compile(r"[A-Za-z0-9 ,._-]{1,100}")
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_ROOT_ATTR = re.compile(r"[a-z][a-z-]{0,30}")
_DOT_ID = re.compile(r"(?:graph|node|edge|clust|a_node|a_edge|a_graph|a_clust)\d{1,9}(?:_\d{1,9})?")


def _one_of(*words: str) -> re.Pattern:
    return re.compile("|".join(map(re.escape, words)))


_PAINT = {
    "fill": _COLOUR,
    "stroke": _COLOUR,
    "stroke-width": _LENGTH,
    "stroke-dasharray": _DASHES,
    "fill-opacity": _NUMBER,
    "stroke-opacity": _NUMBER,
    "opacity": _NUMBER,
    "stroke-linecap": _one_of("butt", "round", "square"),
    "stroke-linejoin": _one_of("miter", "round", "bevel"),
}
_TEXT = {
    "x": _LENGTH,
    "y": _LENGTH,
    "text-anchor": _one_of("start", "middle", "end"),
    "font-family": _FONT,
    "font-size": _LENGTH,
    "font-weight": _one_of(
        "bold", "normal", "bolder", "lighter", "100", "200", "300", "400", "500", "600", "700", "800", "900"
    ),
    "font-style": _one_of("normal", "italic", "oblique"),
    "text-decoration": _one_of("none", "underline", "overline", "line-through"),
    "baseline-shift": _one_of("sub", "super", "baseline"),
}
# element -> attribute -> the pattern its whole value must match; "id" and "class" are checked
# by _clean_value (a dot-made id; class tokens).
ALLOWED: dict[str, dict[str, re.Pattern]] = {
    "svg": {"width": _LENGTH, "height": _LENGTH, "viewBox": _VIEWBOX},
    "g": {"id": _DOT_ID, "class": _TOKEN, "transform": _TRANSFORM, **_PAINT},
    "title": {},
    "path": {"d": _PATH, **_PAINT},
    "polygon": {"points": _POINTS, **_PAINT},
    "polyline": {"points": _POINTS, **_PAINT},
    "ellipse": {"cx": _LENGTH, "cy": _LENGTH, "rx": _LENGTH, "ry": _LENGTH, **_PAINT},
    "text": {**_TEXT, **_PAINT},
}
UNWRAPPED = frozenset({"a"})  # dot wraps URL/tooltip nodes in <a>: keep what it holds
TEXT_ELEMENTS = frozenset({"title", "text"})
CLASS_TOKENS_MAX = 32


class SvgRefused(ValueError):
    """The input is not an SVG this sanitizer will pass on (too big, too deep, not XML, DTD)."""


@dataclass
class _Frame:
    name: str
    rules: str  # the element whose text rules apply here (an unwrapped <a> inherits)
    keep: bool  # False inside a dropped element: nothing below it is written
    written: bool


@dataclass
class _Writer:
    root_attrs: dict[str, str]
    out: list[str] = field(default_factory=list)
    stack: list[_Frame] = field(default_factory=list)
    elements: int = 0

    def start(self, name: str, attrs: dict[str, str]) -> None:
        self.elements += 1
        if self.elements > ELEMENTS_MAX or len(self.stack) >= DEPTH_MAX:
            raise SvgRefused(f"more than {ELEMENTS_MAX} elements or {DEPTH_MAX} levels")
        if not self.stack and name != "svg":
            raise SvgRefused(f"the root element is <{name[:40]}>, not <svg>")
        parent = self.stack[-1] if self.stack else _Frame("", "", True, False)
        if not parent.keep or (name not in ALLOWED and name not in UNWRAPPED):
            self.stack.append(_Frame(name, name, False, False))
        elif name in UNWRAPPED:
            self.stack.append(_Frame(name, parent.rules, True, False))
        else:
            extra = {"xmlns": SVG_NS, **self.root_attrs} if not self.stack else {}
            self.stack.append(_Frame(name, name, True, True))
            self.out.append(f"<{name}{_attributes(name, attrs, extra)}>")

    def end(self, name: str) -> None:
        if self.stack.pop().written:
            self.out.append(f"</{name}>" + ("" if name in TEXT_ELEMENTS else "\n"))

    def text(self, data: str) -> None:
        if self.stack and self.stack[-1].keep and self.stack[-1].rules in TEXT_ELEMENTS:
            self.out.append(_escape(data))


def sanitize(svg: str, root_attrs: dict[str, str] | None = None) -> str:
    """A re-serialised copy of `svg` holding only allowed elements and attribute values.
    `root_attrs` (server-made, escaped here) are added to the root ``<svg>``. Raises SvgRefused."""
    if len(svg) > SVG_BYTES_MAX:
        raise SvgRefused(f"the drawing is larger than {SVG_BYTES_MAX} bytes")
    extra = dict(root_attrs or {})
    if not all(_ROOT_ATTR.fullmatch(name) for name in extra):
        raise ValueError(f"root attribute names must match {_ROOT_ATTR.pattern}")
    writer = _Writer(extra)
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd
    parser.StartElementHandler = writer.start
    parser.EndElementHandler = writer.end
    parser.CharacterDataHandler = writer.text
    parser.buffer_text = True
    try:
        parser.Parse(svg, True)
    except expat.ExpatError as exc:
        raise SvgRefused(f"not well-formed XML ({exc})") from None
    except UnicodeEncodeError:
        raise SvgRefused("a lone surrogate in the text") from None
    if not writer.out:
        raise SvgRefused("no <svg> element")
    return "".join(writer.out).rstrip("\n")


def _refuse_dtd(*_args) -> NoReturn:  # raises: fits every expat handler's signature
    raise SvgRefused("a DOCTYPE or entity declaration")


def _attributes(element: str, attrs: dict[str, str], extra: dict[str, str]) -> str:
    allowed = ALLOWED[element]
    kept = {}
    for name, value in attrs.items():
        pattern = allowed.get(name)
        cleaned = None if pattern is None else _clean_value(name, value, pattern)
        if cleaned is not None:
            kept[name] = cleaned
    kept.update(extra)
    return "".join(f' {name}="{_escape(value, quote=True)}"' for name, value in kept.items())


def _clean_value(name: str, value: str, pattern: re.Pattern) -> str | None:
    if name == "class":  # keep the well-formed tokens (the page's JS hooks are tokens)
        tokens = [t for t in value.split()[:CLASS_TOKENS_MAX] if pattern.fullmatch(t)]
        return " ".join(tokens) or None
    return value if pattern.fullmatch(value) else None


def _escape(text: str, quote: bool = False) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace('"', "&quot;") if quote else text
