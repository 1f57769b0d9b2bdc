"""Element ids made unique per notebook output.

The page's templates name their elements once per page (`id="panels"`, `id="tensors-card"`,
`id="sd-3"`, `id="module-0"`, Graphviz's `id="node1"`), and one notebook shows many outputs in one
DOM (JupyterLab, Notebook 7, nbconvert's HTML): two `%%tensors` cells would repeat every id, so a
`href="#module-0"` or an `aria-labelledby` could land in the other cell's output. Each output gets
a prefix of its own, put on every id and on every reference to one, in the rendered string: the
page keeps its ids, and the templates know nothing of it.

The string is our own templates' output: every value from a run in it is escaped (a `"` is
`&#34;`, a `<` is `&lt;`), so a tag ends at the first `>` outside the stylesheet and an attribute
value at its closing quote. The stylesheet (static/app.css's panel rules) selects no id
(tests/notebook/test_ids.py), so it needs no rewrite.
"""

from __future__ import annotations

import re
import secrets

# Attributes whose value is one id, or a space-separated list of ids.
ID_LISTS = (
    "id|for|headers|list|form|aria-labelledby|aria-describedby|aria-controls|aria-owns"
    "|aria-activedescendant|aria-details|aria-errormessage|aria-flowto"
)
_TAG = re.compile(r"<style\b.*?</style\s*>|<[a-zA-Z][^>]*>", re.S | re.I)
_ID_ATTR = re.compile(rf"(\s(?:{ID_LISTS}))=(\"[^\"]*\"|'[^']*')")
_HREF = re.compile(r"(\s(?:xlink:)?href)=([\"'])#")
_URL = re.compile(r"url\((\s*[\"']?)#")
PREFIX_HEX_CHARS = 8  # of randomness: unique among a notebook's outputs, across kernel restarts


def new_prefix() -> str:
    """A prefix no other output has: random, since a restarted kernel counts from zero again
    while the notebook still shows the outputs of the one before."""
    return f"tp{secrets.token_hex(PREFIX_HEX_CHARS // 2)}-"


def prefixed(html: str, prefix: str) -> str:
    """`html` with `prefix` before every id it defines and every id it refers to."""
    return _TAG.sub(lambda m: _tag(m.group(0), prefix), html)


def _tag(tag: str, prefix: str) -> str:
    if tag[:6].lower() == "<style":
        return tag
    tag = _ID_ATTR.sub(lambda m: _ids(m, prefix), tag)
    tag = _HREF.sub(lambda m: f"{m.group(1)}={m.group(2)}#{prefix}", tag)
    return _URL.sub(lambda m: f"url({m.group(1)}#{prefix}", tag)


def _ids(m: re.Match[str], prefix: str) -> str:
    quote, value = m.group(2)[0], m.group(2)[1:-1]
    ids = " ".join(prefix + v for v in value.split())
    return f"{m.group(1)}={quote}{ids}{quote}"
