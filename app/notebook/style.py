"""The page's stylesheet (static/app.css) for a notebook: the panels' rules only, each scoped under
the panels' own wrapper so nothing leaks into the notebook around them.

Derived when first asked for rather than copied, so a panel's CSS changed for the page reaches the
notebook too. `:root` and `body` become the wrapper (the colours are its custom properties), every
other selector gets the wrapper as its ancestor, and the rules of the page's chrome (top bar,
editor, timeline, share box, embed form) are left out: a notebook has none of them.

The ancestor is written twice (`.tp-nb.tp-nb td`): JupyterLab's and nbconvert's output styles
(`:not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon td` right-aligns every cell, `:not(pre) > code`
greys every code) are one class more specific than the page's own rules, which would lose to them.
RESET undoes what those styles give elements the page leaves plain.
"""

from __future__ import annotations

import re
from functools import lru_cache

from app import page_css

SCOPE = ".tp-nb"
INSIDE = SCOPE + SCOPE  # the descendants' prefix, one class up (see above)
# Selectors that style the page around the panels; a rule whose every selector has one is dropped.
CHROME = re.compile(
    r"\.topbar|\.controls|\.editor-pane|#editor|#code|\.cm-|\.share|\.draft-bar|\.live|\.busy|\.spinner"
    r"|\.notice|\.layout|\.claim|\.timeline|#tl-|\.tl-|\.has-steps|\.examples-label|\.logo|\.hint"
    r"|^h1$|^select|^input|\.panels-pane|\.embed|#embed"
)
# What only a notebook needs: the widget's focus rows, the static fallback's every diagram spaced
# (display.fragment shows them all there: no script to show the focused one), the text graph when
# Graphviz is missing.
RESET = f"""
{INSIDE} th, {INSIDE} td, {INSIDE} tr {{ text-align: left; line-height: inherit; max-width: none; }}
{INSIDE} table tbody tr {{ background: transparent; }}
{INSIDE} code {{ background: transparent; padding: 0; color: inherit; line-height: inherit; }}
{INSIDE} code {{ white-space: inherit; }}
{INSIDE} p, {INSIDE} ul {{ margin-top: 0; }}
"""
NOTEBOOK_CSS = f"""
{SCOPE} {{ background: var(--bg); color: var(--ink); padding: 8px; border-radius: 10px; max-width: 100%; }}
{INSIDE} .panels {{ gap: 10px; }}
{INSIDE}.tp-static figure.sd {{ margin-top: 10px; }}
{INSIDE}.tp-static .trow {{ cursor: default; }}
{INSIDE} ul.text-graph {{ font-size: 12.5px; margin: 4px 0; padding-left: 18px; }}
{INSIDE} .tp-nb-head {{ font-size: 12px; color: var(--muted); margin: 0 0 6px; }}
"""


@lru_cache(maxsize=1)
def stylesheet() -> str:
    """The scoped panel rules of static/app.css plus the notebook's own."""
    return RESET + _scoped(page_css.source()) + NOTEBOOK_CSS


def _scoped(css: str) -> str:
    out: list[str] = []
    pos = 0
    while True:
        brace = css.find("{", pos)
        if brace < 0:
            return "\n".join(out)
        prelude = css[pos:brace].strip()
        end = _matching(css, brace)
        body = css[brace + 1 : end]
        pos = end + 1
        if prelude.startswith("@media"):
            inner = _scoped(body)
            if inner:
                out.append(f"{prelude} {{\n{inner}\n}}")
        elif not prelude.startswith("@"):  # @keyframes: only the page's spinner has one
            selectors = [s for s in _split(prelude) if not CHROME.search(s)]
            if selectors:
                out.append(", ".join(_scope(s) for s in selectors) + " {" + body + "}")


def _matching(css: str, start: int) -> int:
    depth = 0
    for i in range(start, len(css)):
        if css[i] == "{":
            depth += 1
        elif css[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return len(css)


def _split(prelude: str) -> list[str]:
    """A selector list at its top-level commas (none inside parentheses)."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in prelude:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def _scope(selector: str) -> str:
    if selector in (":root", "body", "html"):
        return SCOPE
    if selector == "*":
        return f"{SCOPE}, {SCOPE} *"
    return f"{INSIDE} {selector}"
