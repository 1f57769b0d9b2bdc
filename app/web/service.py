"""Running one snippet on behalf of any route: the single owner of overload handling,
timing, metrics and conversion, so the JSON and HTML handlers stay thin."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException
from starlette.requests import ClientDisconnect

from app.convert import PIECES_ABOVE_BYTES, paused_gc, to_response
from app.encode_pieces import dismantle, encode_run
from app.sandbox.outcome import RunOutcome
from app.sandbox.pool import Overloaded, Pool, Unavailable
from app.schemas import RunResponse
from app.settings import Settings
from app.web.disconnect import unless_disconnected


@dataclass
class Metrics:
    runs_by_outcome: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    wall_ms_total: float = 0.0

    def as_dict(self) -> dict:
        return {
            "runs_by_outcome": dict(self.runs_by_outcome),
            "rejected": dict(self.rejected),
            "wall_ms_total": round(self.wall_ms_total, 3),
        }


class RunService:
    def __init__(self, pool: Pool, settings: Settings):
        self.pool = pool
        self.settings = settings
        self.metrics = Metrics()

    def check_code(self, code: str) -> None:
        size = len(code.encode("utf-8", "surrogatepass"))
        if size > self.settings.code_max_bytes:
            raise HTTPException(
                413, f"code is {size} bytes; the limit is {self.settings.code_max_bytes} bytes"
            )

    async def run(
        self,
        code: str,
        *,
        trace: bool = False,
        states: bool = False,
        outline: bool = False,
        state_at: int | None = None,
        state_only: bool = False,
        gc_hold: ExitStack | None = None,
        seed: int | None = None,
    ) -> RunResponse:
        """The run's response. Parsed and validated in a thread (and there in pieces: see
        app.convert), so a 16 MiB result does not stop the event loop or the other threads.
        `gc_hold`: the cyclic GC stays paused from the conversion until the caller closes it
        (after drawing and freeing the run): re-enabled in between, its first pass walked every
        object of the fresh run, one C call holding the GIL (~0.1 s for a 9 MiB run).
        `seed`: what torch, numpy and random start from; settings.run_seed when None.
        `state_only`: the answer is step `state_at`'s view alone (the page's step fragment)."""
        started = time.perf_counter()
        wire = trace_wire(self.settings, trace, states, outline, state_at, state_only)
        outcome = await self._outcome(code, wire, seed)
        if gc_hold is not None:
            gc_hold.enter_context(paused_gc())
        response = await asyncio.to_thread(to_response, outcome)
        self._count(response, started)
        return response

    async def run_json(
        self,
        code: str,
        *,
        trace: bool = False,
        states: bool = False,
        outline: bool = False,
        state_at: int | None = None,
        seed: int | None = None,
    ) -> bytes:
        """run(), encoded, in a thread: the response is built, encoded and freed with the cyclic
        GC paused. A traced result is ~10k objects; freed before the GC runs again, they never
        trigger a collection (which would walk them all and cost more than building them)."""
        started = time.perf_counter()
        outcome = await self._outcome(code, trace_wire(self.settings, trace, states, outline, state_at), seed)
        body, verdict = await asyncio.to_thread(_encoded, outcome)
        self._count(verdict, started)
        return body

    async def _outcome(self, code: str, options: dict[str, Any] | None, seed: int | None) -> RunOutcome:
        self.check_code(code)
        run = self.pool.run(code, trace=options, seed=self.settings.run_seed if seed is None else seed)
        try:
            # A client that hangs up cancels its run: its worker is killed, its slot freed.
            return await unless_disconnected(run)
        except ClientDisconnect:
            self.metrics.rejected["disconnected"] += 1
            raise
        except Overloaded:
            self.metrics.rejected["overloaded"] += 1
            raise _unavailable(
                "the playground is busy; try again shortly", self.settings.overload_retry_after_s
            ) from None
        except Unavailable as exc:
            self.metrics.rejected["unavailable"] += 1
            raise _unavailable(f"no worker is available: {exc.reason}", exc.retry_after_s) from None

    def _count(self, response: RunResponse, started: float) -> None:
        self.metrics.runs_by_outcome[_outcome_key(response)] += 1
        self.metrics.wall_ms_total += (time.perf_counter() - started) * 1000


def trace_wire(
    settings: Settings,
    trace: bool,
    states: bool = False,
    outline: bool = False,
    state_at: int | None = None,
    state_only: bool = False,
) -> dict[str, Any] | None:
    """The trace options a run sends its worker (None: not traced). `outline`: the steps'
    places only (about a plain run's cost); `state_at`: with it, that one step's changes and
    state too; `state_only`: that step's view and nothing else. Raises ValueError for a
    state_at without outline, or a state_only without state_at."""
    if not trace:
        return None
    options = settings.trace_options(states, outline=outline, state_at=state_at, state_only=state_only)
    return options.to_wire()


def _unavailable(message: str, retry_after_s: float) -> HTTPException:
    return HTTPException(503, message, headers={"Retry-After": str(max(1, round(retry_after_s)))})


def _encoded(outcome: RunOutcome) -> tuple[bytes, RunResponse]:
    """(JSON body, the verdict alone: ok and error) of a run; a big one encoded and freed in
    pieces."""
    with paused_gc():
        response = to_response(outcome)
        verdict = RunResponse.model_construct(ok=response.ok, error=response.error)
        if len(outcome.payload) <= PIECES_ABOVE_BYTES:
            return response.model_dump_json().encode(), verdict
        body = encode_run(response)
        box = [response]
        del response
        dismantle(box)  # the error is still the verdict's: left whole
        return body, verdict


def _outcome_key(response: RunResponse) -> str:
    if response.ok:
        return "ok"
    return response.error.type if response.error else "error"
