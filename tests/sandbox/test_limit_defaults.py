"""The sandbox limits have one set of defaults (SandboxLimits), and the TP_* settings agree with
it field by field: a limit missing from the settings, one the sandbox does not know, or a default
that differs would each make the server run with something nobody set."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from app.sandbox.limits import MEMORY_RLIMIT_MODES, SandboxLimits
from app.settings import Settings

# Settings that are not sandbox limits: the web layer's, the pool's, the step-through's.
NOT_LIMITS_PREFIXES = ("trace_", "run_cache_")
NOT_LIMITS = {
    "code_max_bytes",
    "body_read_timeout_s",
    "frame_ancestors",
    "embed_frame_ancestors",
    "max_concurrent_runs",
    "queue_max",
    "spare_workers",
    "overload_retry_after_s",
    "zygote_start_timeout_s",
    "render_budget_s",
    "run_seed",  # what a run starts from, not what it may use
}


def _limit_settings() -> set[str]:
    return {
        name
        for name in Settings.model_fields
        if name not in NOT_LIMITS and not name.startswith(NOT_LIMITS_PREFIXES)
    }


def test_settings_hold_exactly_the_sandbox_limits():
    limits = {f.name for f in dataclasses.fields(SandboxLimits)}
    settings = _limit_settings()
    assert not limits - settings, f"limits the settings cannot set: {sorted(limits - settings)}"
    assert not settings - limits, f"settings the sandbox does not know: {sorted(settings - limits)}"


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(SandboxLimits)])
def test_each_setting_defaults_to_the_sandbox_default(field, monkeypatch):
    monkeypatch.delenv(f"TP_{field.upper()}", raising=False)
    assert Settings.model_fields[field].default == getattr(SandboxLimits(), field)
    assert getattr(Settings().sandbox_limits(), field) == getattr(SandboxLimits(), field)


def test_default_settings_give_the_default_limits(monkeypatch):
    for field in dataclasses.fields(SandboxLimits):
        monkeypatch.delenv(f"TP_{field.name.upper()}", raising=False)
    assert Settings().sandbox_limits() == SandboxLimits()


def test_memory_modes_are_one_list():
    assert typing.get_args(Settings.model_fields["memory_rlimit"].annotation) == MEMORY_RLIMIT_MODES
    assert MEMORY_RLIMIT_MODES == ("auto", "as", "data")


def test_sandbox_limits_refuse_a_missing_setting():
    """sandbox_limits() copies every field: a setting that went missing fails loudly instead of
    leaving that limit at its default."""
    with pytest.raises(AttributeError, match="sandbox_uid"):
        Settings.sandbox_limits(_WithoutUid(Settings()))  # type: ignore[arg-type]


class _WithoutUid:
    """A settings object lacking one limit (as if its field had been deleted from Settings)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def __getattr__(self, name: str):
        if name == "sandbox_uid":
            raise AttributeError(name)
        return getattr(self._settings, name)
