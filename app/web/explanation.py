"""The explanation box's record, shared by the error explainers (app.web.explain) and the
limit explainers (app.web.explain_limits)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Explanation:
    title: str
    points: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)  # code suggestions, shown as <code>
