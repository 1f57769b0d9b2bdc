"""Runnable examples, one per lesson of the learner's PyTorch note the playground was built from
(a study note kept outside this repository; each example's ``lesson`` is the note's heading).

Each example is data: an id (stable, used in ``/?example=<id>``), a title, the note's lesson it
illustrates, the claim the panels should make visible, and the code. A claim that names a step
("step 6") carries that step as data (``StepClaim``), which a test checks against the real
timeline; an example may name the graph node its claim is about (``graph_focus``), which the page
scrolls into view. Where the note is loose or
wrong, the example's comments and panels show the truth (e.g. reshape copies only when needed).
"""

from __future__ import annotations

from dataclasses import dataclass
from textwrap import dedent


@dataclass(frozen=True)
class StepClaim:
    """What the claim says happens at a step: tensor `name` first shows `change` at `step`.

    `step` is 1-based, as the timeline shows it. `change` is "added", "values" (its bytes
    changed) or a snapshot field that changed ("version", "grad", ...); `unchanged` lists
    fields the claim says do NOT change there (e.g. the version counter of a kernel write)."""

    step: int
    name: str
    change: str
    unchanged: tuple[str, ...] = ()


@dataclass(frozen=True)
class Example:
    id: str
    title: str
    lesson: str
    claim: str
    code: str
    steps: tuple[StepClaim, ...] = ()
    graph_focus: str = ""  # a grad_fn name the claim is about (e.g. "NllLossBackward0")


def lesson(
    id_: str,
    title: str,
    lesson_: str,
    claim: str,
    code: str,
    *,
    steps: tuple[StepClaim, ...] = (),
    graph_focus: str = "",
) -> Example:
    """An example from an indented code block (dedented, one trailing newline)."""
    return Example(id_, title, lesson_, claim, dedent(code).strip() + "\n", steps, graph_focus)


def _all() -> list[Example]:
    from app.examples import autograd, memory, nn, tensors, tools

    return [*tensors.EXAMPLES, *autograd.EXAMPLES, *nn.EXAMPLES, *tools.EXAMPLES, *memory.EXAMPLES]


EXAMPLES: list[Example] = _all()
DEFAULT_EXAMPLE = "view-shares"
_BY_ID = {e.id: e for e in EXAMPLES}


def by_id(example_id: str | None) -> Example | None:
    return _BY_ID.get(example_id or "")
