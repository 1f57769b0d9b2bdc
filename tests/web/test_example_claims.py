"""Every example runs traced; each claim that names a timeline step is checked against that run:
the change the claim describes first appears at exactly that step (issue: a claim said step 8
where the timeline showed the change at step 6)."""

from __future__ import annotations

import re

import pytest

from app.examples import EXAMPLES, Example, StepClaim
from app.schema_steps import EntryChanges, Step
from app.schemas import RunResponse
from tests.web.conftest import make_client

pytestmark = pytest.mark.integration

_STEP_NUMBER = re.compile(r"\bstep (\d+)\b", re.I)


@pytest.fixture(scope="module")
def traced() -> dict[str, RunResponse]:
    with make_client() as client:
        return {
            e.id: RunResponse.model_validate(
                client.post("/api/run", json={"code": e.code, "trace": True}, timeout=60).json()
            )
            for e in EXAMPLES
        }


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.id)
def test_every_example_steps_through_to_its_last_line(traced, example: Example):
    """The timeline a claim's step number refers to exists for every lesson, up to its end."""
    steps = traced[example.id].steps
    last = len(example.code.rstrip("\n").splitlines())
    assert steps and max(s.end_line for s in steps) == last, [(s.start_line, s.end_line) for s in steps]


def _shows(step: Step, claim: StepClaim) -> bool:
    """Does `step` show the change `claim` describes (and none of the fields it rules out)?"""
    for entries in (step.changes.tensors, step.changes.arrays):
        if claim.change == "added" and claim.name in entries.added:
            return True
        change = _changed(entries, claim.name)
        if change is None:
            continue
        if any(f in change.fields for f in claim.unchanged):
            return False
        return change.values_changed if claim.change == "values" else claim.change in change.fields
    return False


def _changed(entries: EntryChanges, name: str):
    return next((c for c in entries.changed if c.name == name), None)


def test_every_step_a_claim_names_is_backed_by_a_checked_step_claim():
    for e in EXAMPLES:
        named = {int(n) for n in _STEP_NUMBER.findall(e.claim)}
        assert named <= {c.step for c in e.steps}, f"{e.id}: the claim names steps {named}"


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.steps], ids=lambda e: e.id)
def test_each_step_claim_is_where_the_timeline_shows_the_change(traced, example: Example):
    steps = traced[example.id].steps
    for claim in example.steps:
        assert claim.step <= len(steps), f"{claim}: the run has {len(steps)} steps"
        first = next((s.index + 1 for s in steps if _shows(s, claim)), None)
        assert first == claim.step, f"{example.id}: {claim} first shows at step {first}"


def test_a_wrong_step_number_would_be_caught(traced):
    """The check itself can fail: the claim the issue found (step 8) is refused."""
    steps = traced["eval-vs-no-grad"].steps
    wrong = StepClaim(8, "bn.running_mean", "values", unchanged=("version",))
    assert not _shows(steps[wrong.step - 1], wrong)


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.graph_focus], ids=lambda e: e.id)
def test_an_examples_graph_focus_is_a_node_of_its_graph_and_of_its_claim(traced, example: Example):
    """The page scrolls the graph to that node: it must be there, and be what the claim names."""
    assert example.graph_focus in {n.name for n in traced[example.id].graph.nodes}
    assert example.graph_focus in example.claim
