"""Step-through: run a snippet with a snapshot after every top-level statement.

The snippet runs with hidden hook calls inserted (app.sandbox.instrument; no sys.settrace: the
snippet runs at full speed between hooks): one step after every top-level statement and every
statement of a top-level `with`/`if`/`try`/`match` body that runs, and one per iteration of a
top-level loop up to loop_iterations_max; after the loop one more step only when iterations ran
unstepped, there were none, or an `else:` ran. In a loop's first loop_body_iterations_max
iterations every statement of its body that runs is a step too (its `iteration` set), before the
iteration's own.

A statement that raises gets no step of its own; finish() adds an "error" step for it, or, when an
`except` of a stepped `try` handles it, a "caught" step (its note names the exception and the
handler) comes before the handler's steps. Hooks never raise into the snippet (except TimeLimit,
see app.sandbox.trace_guards). Caps (steps_max, bytes_max) stop the stepping, never the run: the
rest runs plainly and `steps_truncated` is set.

Step (one dict each): {"index", "kind": "statement"|"iteration"|"caught"|"error", "start_line",
"end_line", "iteration": int|null, "grad_mode": "enable_grad"|"no_grad"|"inference_mode",
"stdout": text printed during the step, "changes": app.inspector.diff output,
"storage_keys": {snapshot storage id: stable key}, "state": app.inspector.diff.state_delta from
the previous step's state (null: unchanged), "note": str|null}. The state after step k is
apply_state() folded over steps 0..k. With the option states=False only what changed is kept
(app.inspector.changes: the same `changes`, storage ids being the stable keys; "storage_keys" {}
and "state" null), several times cheaper; the run still ends with the full final snapshot. With
outline=True nothing is observed at a step ("changes" empty, "state" null: about a plain run's
cost) but at step state_at (app.sandbox.trace_outline), and the final snapshot is a plain run's.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from app.inspector import budget
from app.inspector.changes import ChangeObserver
from app.inspector.diff import diff, empty_changes, state_delta
from app.inspector.labels import StorageLabeller
from app.inspector.observe import StepObserver
from app.sandbox import instrument, wirejson
from app.sandbox.instrument import (
    BODY_FLAGS,
    CAUGHT_HOOK,
    FILENAME,
    HOOKS,
    ITER_HOOK,
    LOOP_END_HOOK,
    RAISED_HOOK,
    STEP_HOOK,
    Site,
)
from app.sandbox.limits import TimeLimit
from app.sandbox.trace_guards import exception_text, grad_mode, paused_timer
from app.sandbox.trace_options import TraceOptions
from app.sandbox.trace_outline import OneState, outline_step

# What trace=True means: the one set of defaults (app.sandbox.trace_options).
DEFAULTS = TraceOptions()
# Encoding a result of N bytes needs up to ~3N more (orjson's buffer doubling); see wirejson.
HEADROOM_PER_RESULT_BYTE = 4


# A step's observation may use at most this share of the run's time left: a namespace that is
# slow to read (a __repr__ that sleeps) stops the stepping, and the run still ends as a plain
# run of the same code would, with its own final snapshot.
STEP_SHARE_OF_TIME_LEFT = 0.5


class Encoded(list):
    """A payload list whose items are encoded JSON (bytes) already: each step is encoded once,
    when it is measured against bytes_max, and runner.encode_payload splices them in as they are."""


# ---- recording ----------------------------------------------------------------------------------
class Tracer:
    """One per traced run: runner.run_snippet calls instrument(), exec()s, then finish()."""

    def __init__(self, options: TraceOptions | dict | bool, stdout: Any, result_max_bytes: int) -> None:
        # The wire form (true, or a dict of some fields) is read once, here; an unknown key
        # raises ValueError rather than leaving a cap at its default.
        opts = TraceOptions.from_wire(options)
        self.steps_max = opts.steps_max
        self.loop_iterations_max = opts.loop_iterations_max
        self.loop_body_iterations_max = opts.loop_body_iterations_max
        self.bytes_max = min(opts.bytes_max, result_max_bytes // 2)
        self.view_only_at = opts.state_at if opts.state_only else None  # runner: only_the_step()
        self.stdout = stdout
        self.headroom_bytes = HEADROOM_PER_RESULT_BYTE * result_max_bytes
        self.steps: list[bytes] = []  # each step's JSON
        self.truncated = False
        self.sites: list[Site] = []
        self.namespace: dict | None = None
        # states=False: `changes` only (ChangeObserver), no per-step state; several times cheaper.
        # One labeller for the run: a storage keeps its id ("s3") in every step's state and in
        # the final snapshot for as long as its memory lives (app.inspector.labels).
        self._labeller = StorageLabeller()
        self._observer: StepObserver | ChangeObserver | OneState
        if opts.outline:  # nothing observed but around step state_at
            self._observer = OneState(opts.state_at, view_only=opts.state_only)
        elif opts.states:
            self._observer = StepObserver(labeller=self._labeller)
        else:
            self._observer = ChangeObserver(labeller=self._labeller)
        self._encoded: Encoded | None = None  # what finish() gave (an outline run's state is renamed)
        self._held: tuple[int, dict] | None = None  # an outline run's step with its state, unencoded
        self._body_flags: list[bool] = []
        self._prev: Any = None  # (snapshot, storage keys) of the latest step
        self._bytes = 0
        self._stdout_seen = 0  # bytes written so far, and characters already given out
        self._stdout_chars = 0
        self.warnings: list[str] = []
        self._observing_s = 0.0  # the steps' observations so far, and their cap
        self._observing_cap_s = float("inf")

    def instrument(self, code: str, namespace: dict, precompiled: Any = None) -> Any:
        """The code compiled with step hooks (`precompiled` by the server when it could), the
        hooks installed in `namespace`. Raises what compile(code) raises for a broken snippet; if
        only the rewrite fails (e.g. RecursionError on deep nesting), the plain compiled code,
        with a warning."""
        try:
            traced, sites = instrument.load(precompiled) or instrument.compile_traced(code)
        except Exception as exc:  # compile(code) below says what the snippet did
            plain = compile(code, FILENAME, "exec", dont_inherit=True)
            self.warnings.append(f"stepping unavailable: {type(exc).__name__}: {exc}")
            return plain
        self.sites, self.namespace = sites, namespace
        # Which loops run their stepped body copy: each until its first iterations are done.
        self._body_flags = [s.loop and self.loop_body_iterations_max > 0 for s in sites]
        namespace.update(
            {
                STEP_HOOK: self._after_statement,
                ITER_HOOK: self._after_iteration,
                LOOP_END_HOOK: self._after_loop,
                CAUGHT_HOOK: self._after_caught,
                RAISED_HOOK: self._body_raised,
                BODY_FLAGS: self._body_flags,
            }
        )
        return traced

    # Hooks: called from the snippet's module code.
    def _after_statement(self, sid: int) -> None:
        # A loop-body statement's hook runs only in the body copy its loop's flag selects, i.e.
        # in the first loop_body_iterations_max iterations: no count to check here.
        site = self.sites[sid]
        self._record(site, "statement", iteration=self._iteration(site))

    def _body_raised(self, sid: int) -> None:
        self.sites[sid].raised = True

    def _after_iteration(self, sid: int) -> None:
        site = self.sites[sid]
        if site.raised:  # (not sys.exc_info(): a loop may run inside an except handler)
            site.raised = False
            return  # the exception leaves the loop: finish() or a handler records its step
        site.iterations += 1
        if site.iterations >= self.loop_body_iterations_max:
            self._body_flags[sid] = False
        if site.iterations <= self.loop_iterations_max:
            site.stepped = site.iterations
            self._record(site, "iteration", iteration=site.iterations)

    def _after_loop(self, sid: int) -> None:
        site = self.sites[sid]
        if site.iterations and site.stepped == site.iterations and not site.has_else:
            return  # the last iteration's step already shows this state
        note = None
        if site.iterations > site.stepped:
            note = (
                f"iterations {site.stepped + 1}-{site.iterations} ran without steps "
                f"(loop_iterations_max={self.loop_iterations_max})"
            )
        self._record(site, "statement", iteration=site.iterations or None, note=note)

    def _after_caught(self, sid: int) -> None:
        """First thing in an `except` handler: a step for the statement that raised, as it left
        things (a failed statement may have changed some before raising)."""
        exc = sys.exc_info()[1]
        if exc is None or self.truncated:
            return
        tb = exc.__traceback__  # its head is this module frame: the line that was running
        line = tb.tb_lineno if tb is not None else self.sites[sid].start_line
        site = self._innermost(line)  # (a handler in a loop body is hooked in its copy only)
        note = (
            f"raised {type(exc).__name__}: {exception_text(exc)}; handled by the except at "
            f"line {self.sites[sid].start_line}"
        )
        self._record(site, "caught", iteration=self._iteration(site), note=note)

    def _iteration(self, site: Site) -> int | None:
        """The iteration of the top-level loop that `site` is (in) which is running now."""
        loop = site if site.loop else (self.sites[site.parent] if site.parent is not None else None)
        return None if loop is None else loop.iterations + 1

    def _record(self, site: Site, kind: str, iteration: int | None = None, note: str | None = None) -> None:
        if self.truncated or self.namespace is None:
            return
        if len(self.steps) >= self.steps_max:
            self._stop(f"steps_max={self.steps_max}")
            return
        if isinstance(self._observer, OneState) and not self._observer.observes(len(self.steps)):
            self._outline_append(site, kind, iteration, note)
            return
        if budget.active():  # after the run: the runner's budget (and its alarm) is in force
            self._guarded_append(site, kind, iteration, note)
            return
        with paused_timer() as left_s:
            seconds = self._step_budget_s(left_s)
            started = time.perf_counter()
            with budget.limit(seconds) as spent:
                self._guarded_append(site, kind, iteration, note)
            self._observing_s += time.perf_counter() - started
            if spent.expired and not self.truncated:
                self._stop(f"the inspection's time budget of {seconds:.3g} s")
            elif self._observing_s > self._observing_cap_s and not self.truncated:
                self._stop(
                    f"the steps took {self._observing_s:.3g} s, over "
                    f"{STEP_SHARE_OF_TIME_LEFT:g} of the run's time"
                )

    def _step_budget_s(self, left_s: float) -> float:
        """This step's share: a namespace slow to read (each __repr__ 10 ms, say) stops the
        stepping before the steps, all together, take over half of the run's time (its time
        left at the first step), so that the run ends as its plain run would."""
        seconds = self._observer.limits.time_budget_s
        if left_s > 0:
            if self._observing_cap_s == float("inf"):
                self._observing_cap_s = left_s * STEP_SHARE_OF_TIME_LEFT
            seconds = min(seconds, left_s * STEP_SHARE_OF_TIME_LEFT)
        return seconds

    def _guarded_append(self, site: Site, kind: str, iteration: int | None, note: str | None) -> None:
        """A hook must not raise into the snippet: not what the snippet's code raised while its
        namespace was read, nor the budget's alarm (app.inspector.budget.Expired) where it fell
        between the observers' own guards. (The run's TimeLimit is paused meanwhile.)"""
        try:
            self._append(site, kind, iteration, note)
        except BaseException as exc:  # see the docstring
            budget.absorb(exc)
            self.warnings.append(f"step skipped: {type(exc).__name__}")

    def _outline_append(self, site: Site, kind: str, iteration: int | None, note: str | None) -> None:
        """A step that observes nothing: no timer to pause, no budget; the run's TimeLimit, which
        may fire here as anywhere in the snippet, goes on to end the run."""
        try:
            text = outline_step(len(self.steps), kind, site, iteration, grad_mode(), self._new_stdout(), note)
        except TimeLimit:
            raise
        except BaseException as exc:  # MemoryError, the runner's budget after the run: as _guarded_append
            budget.absorb(exc)
            self.warnings.append(f"step skipped: {type(exc).__name__}")
            return
        if self._bytes + len(text) > self.bytes_max:
            self._stop(f"bytes_max={self.bytes_max}")
            return
        self._bytes += len(text)
        self.steps.append(text)

    def _append(self, site: Site, kind: str, iteration: int | None, note: str | None) -> None:
        changes, storage_keys, state = self._observe()
        step = {
            "index": len(self.steps),
            "kind": kind,
            "start_line": site.start_line,
            "end_line": site.end_line,
            "iteration": iteration,
            "grad_mode": grad_mode(),
            "stdout": self._new_stdout(),
            "changes": changes,
            "note": note,
            "storage_keys": storage_keys,
            "state": state,
            "memory": getattr(self._observer, "memory", None),  # ledger totals
        }
        text = wirejson.dumps(step, headroom_bytes=self.headroom_bytes)
        if self._bytes + len(text) > self.bytes_max:
            self._stop(f"bytes_max={self.bytes_max}")
            return
        self._bytes += len(text)
        if isinstance(self._observer, OneState) and state is not None:
            self._held = (len(self.steps), step)  # renamed after the final snapshot
        self.steps.append(text)

    def _observe(self) -> tuple[dict, dict, dict | None]:
        """(changes, storage keys, state delta) after this step."""
        namespace = self.namespace or {}  # set by start(); a step before it has nothing to see
        if isinstance(self._observer, ChangeObserver):
            return self._observer.observe_changes(namespace), {}, None
        if isinstance(self._observer, OneState):
            return self._observer.observe(namespace, len(self.steps))
        obs = self._observer.observe(namespace)
        if not obs.changed:
            return empty_changes(), obs.storage_keys, None
        prev_snap, prev_keys = self._prev or (None, {})
        changes = diff(
            prev_snap, obs.snapshot, storage_keys_before=prev_keys, storage_keys_after=obs.storage_keys
        )
        self._prev = (obs.snapshot, obs.storage_keys)
        return changes, obs.storage_keys, state_delta(prev_snap, obs.snapshot)

    def _new_stdout(self) -> str:
        if self.stdout.total_bytes == self._stdout_seen:
            return ""
        self._stdout_seen = self.stdout.total_bytes
        text = self.stdout.result()["text"]
        seen, self._stdout_chars = self._stdout_chars, len(text)
        return text[seen:]

    def _stop(self, why: str) -> None:
        self.truncated = True
        self._body_flags[:] = [False] * len(self._body_flags)  # the rest runs as written
        self.warnings.append(
            f"stepping stopped at {len(self.steps)} steps ({why}); the rest ran without steps"
        )

    # ---- after the run ----
    def finish(self, namespace: dict, error: dict | None) -> dict[str, Any]:
        for name in HOOKS:
            namespace.pop(name, None)
        if error is not None and self.namespace is not None:
            site = self._failing_site(error)
            if site is not None:
                self._record(site, "error", iteration=self._iteration(site))
        self.namespace = None
        self.warnings.extend(getattr(self._observer, "warnings", ()))
        self._encoded = Encoded(self.steps)
        return {"steps": self._encoded, "steps_truncated": self.truncated}

    def snapshot(self, namespace: dict) -> dict:
        """The final snapshot, equal to app.inspector.snapshot() but reusing the steps' work, and
        with the steps' storage ids (the run's labeller) rather than discovery order."""
        observer = self._observer
        if isinstance(observer, OneState):
            return self._outline_snapshot(observer, namespace)
        if isinstance(observer, ChangeObserver):  # no step states to reuse: a fresh observer
            observer = StepObserver(self._observer.limits, labeller=self._labeller)
        return observer.observe(namespace, final=True).snapshot

    def _outline_snapshot(self, observer: OneState, namespace: dict) -> dict:
        """A plain run's final snapshot; the held step's storage ids renamed after it (until
        then the step went as observed: ids of its own run, consistent within the step)."""
        if self._held is None or self._encoded is None:
            return observer.final(namespace)
        snap, rename = observer.final_renaming(namespace)
        index, step = self._held
        self._encoded[index] = wirejson.dumps(rename(step), headroom_bytes=self.headroom_bytes)
        self._held = None
        return snap

    def _failing_site(self, error: dict) -> Site | None:
        frames = [f for f in error.get("traceback", []) if f.get("function") == "<module>"]
        line = frames[0]["line"] if frames else error.get("line")
        return self._innermost(line) if isinstance(line, int) else None

    def _innermost(self, line: int) -> Site:
        """The site of the statement running at `line`: the with/try-body statement, not a loop
        around it."""
        containing = [s for s in self.sites if s.start_line <= line <= s.end_line]
        if containing:
            return min(containing, key=lambda s: s.end_line - s.start_line)
        return Site(line, line)
