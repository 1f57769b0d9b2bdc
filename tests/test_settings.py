"""Settings come from TP_* environment variables and reach the sandbox unchanged."""

import dataclasses

import pytest
from pydantic import ValidationError

from app.sandbox.limits import SandboxLimits
from app.settings import Settings


def test_env_vars_with_units_override_defaults(monkeypatch):
    monkeypatch.setenv("TP_EXEC_TIMEOUT_S", "2.5")
    monkeypatch.setenv("TP_MEMORY_BUDGET_MB", "256")
    monkeypatch.setenv("TP_CODE_MAX_BYTES", "1000")
    s = Settings()
    assert (s.exec_timeout_s, s.memory_budget_mb, s.code_max_bytes) == (2.5, 256, 1000)


def test_every_sandbox_limit_is_a_setting():
    # A limit the sandbox knows but settings cannot set would be silently stuck at its default.
    sandbox_fields = {f.name for f in dataclasses.fields(SandboxLimits)}
    assert sandbox_fields <= set(Settings.model_fields)


def test_sandbox_limits_carry_the_settings_values():
    limits = Settings(exec_timeout_s=0.75, output_max_bytes=123).sandbox_limits()
    assert isinstance(limits, SandboxLimits)
    assert (limits.exec_timeout_s, limits.output_max_bytes) == (0.75, 123)


@pytest.mark.parametrize(
    "name, value", [("exec_timeout_s", 0), ("memory_budget_mb", -1), ("max_concurrent_runs", 0)]
)
def test_nonsense_limits_are_rejected(name, value):
    with pytest.raises(ValidationError):
        Settings(**{name: value})


def test_trace_steps_max_cannot_exceed_what_the_schema_accepts():
    """Regression: a trace_steps_max above the schema's STEPS_MAX made every long stepped run a
    Crash ("the worker sent an invalid result") instead of a refusal at start-up."""
    from app.schema_rules import STEPS_MAX

    assert Settings(trace_steps_max=STEPS_MAX).trace_steps_max == STEPS_MAX
    with pytest.raises(ValidationError):
        Settings(trace_steps_max=STEPS_MAX + 1)


def test_trace_settings_default_to_the_trace_options_defaults(monkeypatch):
    """One set of defaults: the TP_TRACE_* fields take theirs from TraceOptions, so the server's
    options and what trace=True means in the worker cannot drift apart."""
    from app.sandbox.trace_options import FIELDS, TraceOptions

    for name in FIELDS:
        monkeypatch.delenv(f"TP_TRACE_{name.upper()}", raising=False)
    assert Settings().trace_options(states=True) == TraceOptions()
    assert Settings().trace_options() == TraceOptions(states=False)
    # Every cap is a setting (what the steps carry is per request: step_states, outline,
    # state_at, state_only).
    per_request = ("states", "outline", "state_at", "state_only")
    assert {f"trace_{n}" for n in FIELDS if n not in per_request} <= set(Settings.model_fields)
    assert Settings().trace_options(outline=True, state_at=3) == TraceOptions(
        states=False, outline=True, state_at=3
    )


def test_trace_settings_reach_the_options_and_their_wire_form(monkeypatch):
    monkeypatch.setenv("TP_TRACE_STEPS_MAX", "7")
    monkeypatch.setenv("TP_TRACE_LOOP_BODY_ITERATIONS_MAX", "0")
    options = Settings().trace_options(states=True)
    assert (options.steps_max, options.loop_body_iterations_max, options.states) == (7, 0, True)
    assert options.to_wire()["steps_max"] == 7


@pytest.mark.parametrize(
    "name, value",
    [("trace_steps_max", 0), ("trace_loop_iterations_max", 0), ("trace_bytes_max", 1023)],
)
def test_trace_settings_below_what_the_options_accept_are_rejected(name, value):
    with pytest.raises(ValidationError):
        Settings(**{name: value})
