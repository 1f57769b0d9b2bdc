"""Runnable examples, one per lesson of the learner note (shared/seed/pytorch-note.md).

Each example is data: an id (stable, used in ``/?example=<id>``), a title, the note's lesson it
illustrates, the claim the panels should make visible, and the code. Where the note is loose or
wrong, the example's comments and panels show the truth (e.g. reshape copies only when needed).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    id: str
    title: str
    lesson: str
    claim: str
    code: str


def _all() -> list[Example]:
    from app.examples import autograd, nn, tensors

    return [*tensors.EXAMPLES, *autograd.EXAMPLES, *nn.EXAMPLES]


EXAMPLES: list[Example] = _all()
DEFAULT_EXAMPLE = "view-shares"
_BY_ID = {e.id: e for e in EXAMPLES}


def by_id(example_id: str | None) -> Example | None:
    return _BY_ID.get(example_id or "")
