"""Shared helpers for inspector tests: run snippets like the sandbox does."""

from __future__ import annotations

import json
import textwrap
import traceback
from typing import Any

from app.inspector import InspectLimits, snapshot

PRELUDE = "import torch\nimport numpy as np\nfrom torch import nn\n"


def run_snippet(code: str, *, prelude: bool = True) -> tuple[dict, BaseException | None]:
    """exec() code compiled as "<snippet>" in a fresh dict; return (namespace, error).

    Mirrors the product: the namespace gets __builtins__ and the imports.
    The prelude runs separately so snippet line numbers start at 1.
    """
    namespace: dict[str, Any] = {"__name__": "__snippet__"}
    if prelude:
        exec(compile(PRELUDE, "<prelude>", "exec"), namespace)
    try:
        exec(compile(textwrap.dedent(code), "<snippet>", "exec"), namespace)
    except Exception as exc:  # the snippet's own failure is data for the test
        return namespace, exc
    return namespace, None


def snippet_line(exc: BaseException) -> int | None:
    """Line number of the innermost <snippet> frame in exc's traceback."""
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<snippet>"]
    return lines[-1] if lines else None


def snap(code: str, limits: InspectLimits | None = None) -> dict:
    namespace, exc = run_snippet(code)
    assert exc is None, f"snippet failed: {exc!r}"
    return snapshot(namespace, limits=limits)


def by_name(entries: list[dict], name: str) -> dict:
    for entry in entries:
        if entry["name"] == name:
            return entry
    raise KeyError(f"{name!r} not in {[e['name'] for e in entries]}")


def storage_of(snapshot_: dict, name: str) -> str | None:
    for entry in snapshot_["tensors"] + snapshot_["arrays"]:
        if entry["name"] == name:
            return entry["storage"]
    raise KeyError(name)


def strict_json(value: Any) -> str:
    return json.dumps(value, allow_nan=False, sort_keys=True)
