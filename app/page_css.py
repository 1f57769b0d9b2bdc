"""The page's stylesheet (static/app.css), read for the copies of the panels that leave the page:
the notebook's scoped stylesheet (app.notebook.style), the unstyled copy's paint
(app.notebook.plain) and a downloaded SVG's inline styles (app.web.export_svg).

Each derives what it needs from the page's own rules when first asked, so a colour changed for
the page changes everywhere. Read as our own file, not as anyone's input: comments go, @-blocks
(media queries, keyframes: rules for a screen) are skipped, and a rule is a prelude and a body.
Stdlib only: the notebook imports it without the web server.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

PATH = Path(__file__).resolve().parents[1] / "static" / "app.css"
_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_DECL = re.compile(r"\s*([a-z-]+)\s*:\s*([^;]+)")
_VAR = re.compile(r"var\((--[\w-]+)\)")


@lru_cache(maxsize=1)
def source() -> str:
    """static/app.css without its comments."""
    return _COMMENT.sub("", PATH.read_text(encoding="utf-8"))


def top_level_rules(css: str) -> Iterator[tuple[str, str]]:
    """(prelude, body) of each rule outside any @-block."""
    pos, depth, start, prelude = 0, 0, 0, ""
    for i, ch in enumerate(css):
        if ch == "{":
            if depth == 0:
                start, prelude = i, css[pos:i].strip()
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0:
                if not prelude.startswith("@"):
                    yield prelude, css[start + 1 : i]
                pos = i + 1


def declarations(body: str) -> list[tuple[str, str]]:
    """A rule's (property, value) pairs, in order."""
    return [(m.group(1), m.group(2).strip()) for part in body.split(";") if (m := _DECL.match(part))]


@lru_cache(maxsize=1)
def variables() -> dict[str, str]:
    """The custom properties of the page's `:root` (its colours and fonts)."""
    root = next((body for prelude, body in top_level_rules(source()) if prelude == ":root"), "")
    return {k: v for k, v in declarations(root) if k.startswith("--")}


def resolved(value: str, missing: str = "") -> str:
    """`value` with each var() replaced by the page's value (`missing` where it has none) and
    without !important: for readers that know neither."""
    value = _VAR.sub(lambda m: variables().get(m.group(1), missing), value)
    return value.replace("!important", "").strip()
