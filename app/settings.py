"""Every limit and knob of the server, read from the environment (prefix ``TP_``).

Each name carries its unit (``_s``, ``_mb``, ``_bytes``) so that an operator reading
``TP_EXEC_TIMEOUT_S=2`` never has to guess. The sandbox layer takes a plain dataclass
(it must import without pydantic on a GPU box); ``sandbox_limits()`` is the one bridge.
"""

from __future__ import annotations

import dataclasses

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.sandbox.limits import MemoryRlimitMode, SandboxLimits, parse_disabled, parse_required
from app.sandbox.protocol import SEED_END
from app.sandbox.trace_options import MINIMUMS as _LEAST
from app.sandbox.trace_options import TraceOptions
from app.schema_rules import STEPS_MAX
from app.web.headers import check_frame_ancestors

_TRACE = TraceOptions()  # the step-through's defaults
_LIMITS = SandboxLimits()  # the sandbox limits' defaults


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TP_", extra="ignore")

    # Request limits (web layer).
    code_max_bytes: int = Field(64 * 1024, ge=1)
    # The whole request body must arrive within this (uvicorn would wait for one forever).
    body_read_timeout_s: float = Field(10.0, gt=0)
    # CSP frame-ancestors: who may frame the page ("'none'": nobody; e.g. "'self' https://a.org").
    frame_ancestors: str = "'none'"
    # The same for /embed alone, the page made for other sites' iframes (a course page on any
    # host): "*" lets any http(s) page frame it; operators narrow it to their course sites.
    embed_frame_ancestors: str = "*"

    @field_validator("frame_ancestors", "embed_frame_ancestors")
    @classmethod
    def _csp_sources(cls, value: str) -> str:
        return check_frame_ancestors(value)  # ValueError on anything but CSP sources

    # Pool sizing.
    max_concurrent_runs: int = Field(4, ge=1)
    queue_max: int = Field(64, ge=0)
    spare_workers: int = Field(2, ge=0)
    overload_retry_after_s: int = Field(1, ge=1)
    zygote_start_timeout_s: float = Field(60.0, gt=0)

    # Per-run sandbox limits (forwarded to app.sandbox); their defaults are SandboxLimits' own.
    exec_timeout_s: float = Field(_LIMITS.exec_timeout_s, gt=0)
    kill_grace_s: float = Field(_LIMITS.kill_grace_s, gt=0)
    cpu_time_s: int = Field(_LIMITS.cpu_time_s, ge=1)
    memory_budget_mb: int = Field(_LIMITS.memory_budget_mb, ge=16)
    file_size_max_bytes: int = Field(_LIMITS.file_size_max_bytes, ge=0)
    open_files_max: int = Field(_LIMITS.open_files_max, ge=8)
    processes_max: int = Field(_LIMITS.processes_max, ge=1)
    output_max_bytes: int = Field(_LIMITS.output_max_bytes, ge=0)
    output_abort_bytes: int = Field(_LIMITS.output_abort_bytes, ge=1)
    result_max_bytes: int = Field(_LIMITS.result_max_bytes, ge=1024)
    sandbox_uid: int = Field(_LIMITS.sandbox_uid, ge=1)
    sandbox_gid: int = Field(_LIMITS.sandbox_gid, ge=1)
    require_uid_drop: bool = _LIMITS.require_uid_drop
    # How the memory budget is enforced: "as" caps address space, "data" caps private writable
    # memory (CUDA contexts reserve huge address ranges), "auto" picks "data" only with a GPU.
    memory_rlimit: MemoryRlimitMode = _LIMITS.memory_rlimit
    # Fail closed: comma-separated confinement layers (or "all") without which the server refuses
    # to start, e.g. TP_REQUIRE_LAYERS=all in production. Names: app.sandbox.layers.REGISTRY.
    require_layers: str = _LIMITS.require_layers
    # Optional layers not to apply (netns, seccomp, landlock_fs = all of Landlock, landlock_net,
    # landlock_scope), for a host where one breaks something. Health reports them as missing.
    disable_layers: str = _LIMITS.disable_layers

    @field_validator("require_layers")
    @classmethod
    def _known_layers(cls, value: str) -> str:
        parse_required(value)  # ValueError (-> ValidationError) on an unknown layer name
        return value

    @field_validator("disable_layers")
    @classmethod
    def _optional_layers(cls, value: str) -> str:
        parse_disabled(value)
        return value

    # Step-through (requests with trace): the caps on steps and on their share of the result,
    # defaults and bounds from app.sandbox.trace_options (one set for server and worker).
    # At most STEPS_MAX: the server refuses a result with more steps than that.
    trace_steps_max: int = Field(_TRACE.steps_max, ge=_LEAST["steps_max"], le=STEPS_MAX)
    trace_loop_iterations_max: int = Field(_TRACE.loop_iterations_max, ge=_LEAST["loop_iterations_max"])
    # The first iterations of a top-level loop are also stepped statement by statement.
    trace_loop_body_iterations_max: int = Field(
        _TRACE.loop_body_iterations_max, ge=_LEAST["loop_body_iterations_max"]
    )
    trace_bytes_max: int = Field(_TRACE.bytes_max, ge=_LEAST["bytes_max"])

    # Every run starts with torch, numpy and random seeded with this (a request may name another;
    # the snippet may seed again): the same code gives the same numbers on every replica.
    run_seed: int = Field(0, ge=0, lt=SEED_END)

    # Drawing a result (web layer): each page render's time budget, past which the page says the
    # result is too big to draw; and the runs kept for the pages' next steps, as JSON bytes.
    render_budget_s: float = Field(5.0, gt=0)
    run_cache_max_bytes: int = Field(32 * 1024 * 1024, ge=0)
    run_cache_idle_s: float = Field(1800.0, gt=0)

    def trace_options(
        self,
        states: bool = False,
        *,
        outline: bool = False,
        state_at: int | None = None,
        state_only: bool = False,
    ) -> TraceOptions:
        """The worker's trace options; `states`: each step with the whole state after it;
        `outline`: steps without changes or state, but step `state_at`, and with `state_only`
        that step's view alone (app.sandbox.trace_options)."""
        return TraceOptions(
            steps_max=self.trace_steps_max,
            loop_iterations_max=self.trace_loop_iterations_max,
            loop_body_iterations_max=self.trace_loop_body_iterations_max,
            bytes_max=self.trace_bytes_max,
            states=states,
            outline=outline,
            state_at=state_at,
            state_only=state_only,
        )

    def sandbox_limits(self) -> SandboxLimits:
        # Every field (an AttributeError, not a silent default, if a setting went missing).
        return SandboxLimits(**{f.name: getattr(self, f.name) for f in dataclasses.fields(SandboxLimits)})
