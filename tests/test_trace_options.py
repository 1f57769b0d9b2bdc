"""Typed step-through options (app.sandbox.trace_options): one set of defaults, a wire form that
reads back equal, and a misspelt or mistyped option is an error, not silently ignored."""

from __future__ import annotations

import dataclasses
import json

import pytest

from app.sandbox.trace_options import FIELDS, TraceOptions


def test_the_options_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TraceOptions().steps_max = 3  # type: ignore[misc]


def test_the_wire_form_reads_back_equal_through_json():
    options = TraceOptions(steps_max=5, loop_iterations_max=3, loop_body_iterations_max=0, states=False)
    wire = json.loads(json.dumps(options.to_wire()))
    assert set(wire) == set(FIELDS)
    assert TraceOptions.from_wire(wire) == options


def test_true_and_a_partial_dict_fill_in_the_defaults():
    assert TraceOptions.from_wire(True) == TraceOptions()
    assert TraceOptions.from_wire({"states": False}) == dataclasses.replace(TraceOptions(), states=False)


@pytest.mark.parametrize("wire", [{"step_max": 3}, {"states": False, "byte_max": 1}])
def test_a_misspelt_key_is_refused_by_name(wire):
    with pytest.raises(ValueError, match="unknown trace option") as caught:
        TraceOptions.from_wire(wire)
    assert next(iter(set(wire) - set(FIELDS))) in str(caught.value)


@pytest.mark.parametrize(
    "wire",
    [
        {"steps_max": 0},
        {"steps_max": "200"},
        {"steps_max": True},
        {"bytes_max": 10},
        {"loop_body_iterations_max": -1},
        {"states": 1},
        {"outline": "yes"},
        {"outline": 1},
        {"outline": True, "state_at": -1},
        {"outline": True, "state_at": True},
        {"outline": True, "state_at": "3"},
        {"outline": True, "state_at": 2.0},
    ],
)
def test_a_value_of_the_wrong_type_or_below_its_minimum_is_refused(wire):
    with pytest.raises(ValueError, match=list(wire)[-1]):
        TraceOptions.from_wire(wire)


def test_an_outline_with_one_state_reads_back_equal():
    options = TraceOptions.from_wire({"outline": True, "state_at": 0})
    assert options.outline and options.state_at == 0
    assert TraceOptions.from_wire(json.loads(json.dumps(options.to_wire()))) == options
    assert TraceOptions.from_wire({"outline": True, "state_at": None}).state_at is None


def test_state_at_without_outline_is_refused():
    """A step's state asked of a run whose every step carries its state anyway (or none, in the
    light mode) is a caller who forgot outline: an error, not a silently ignored field."""
    with pytest.raises(ValueError, match="state_at needs outline"):
        TraceOptions.from_wire({"state_at": 3})
    with pytest.raises(ValueError, match="state_at needs outline"):
        TraceOptions.from_wire({"states": False, "state_at": 3})


@pytest.mark.parametrize("wire", [False, None, 3, ["states"]])
def test_anything_but_true_or_a_dict_is_refused(wire):
    with pytest.raises(ValueError):
        TraceOptions.from_wire(wire)


def test_a_worker_given_a_misspelt_option_refuses_to_trace():
    """Regression: the tracer merged the dict over its defaults, so {"step_max": 3} stepped the
    run with steps_max 200 and said nothing."""
    from app.sandbox.limits import SandboxLimits
    from app.sandbox.runner import run_snippet

    with pytest.raises(ValueError, match="step_max"):
        run_snippet("x = 1\n", SandboxLimits(), trace={"step_max": 3})
    payload = json.loads(run_snippet("x = 1\ny = 2\n", SandboxLimits(), trace={"steps_max": 1}))
    assert len(payload["steps"]) == 1 and payload["steps_truncated"]


def test_state_only_needs_a_state_at_and_is_a_bool():
    with pytest.raises(ValueError, match="state_only needs state_at"):
        TraceOptions(outline=True, state_only=True)
    with pytest.raises(ValueError, match="state_only must be a bool"):
        TraceOptions.from_wire({"outline": True, "state_at": 1, "state_only": 1})
    assert TraceOptions.from_wire({"outline": True, "state_at": 1, "state_only": True}).state_only is True
