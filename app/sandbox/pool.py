"""asyncio front of the sandbox: owns the zygote process and multiplexes runs over its pipes.

    pool = Pool(SandboxLimits())
    await pool.start()
    outcome = await pool.run("x = torch.ones(2)")   # RunOutcome; outcome.result() -> dict
    await pool.close()

Runs beyond max_concurrent_runs wait (up to queue_max of them; more raise Overloaded). If the
zygote dies, in-flight runs fail with Unavailable and it is restarted with backoff.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from app.sandbox import instrument
from app.sandbox.limits import SandboxLimits
from app.sandbox.outcome import Overloaded, RunOutcome, SandboxStartError, Unavailable
from app.sandbox.protocol import HEADER, SEED_END, FrameTooLarge, encode_frame

REPO_ROOT = Path(__file__).resolve().parents[2]
HEADER_MAX_BYTES = 1 << 20
# Extra wait beyond the zygote's own hard deadline before the pool calls the zygote wedged.
ZYGOTE_SLACK_S = 10.0
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.1, 10.0
# -s: no user site-packages; -B: no .pyc writes. Not -E: it would ignore PYTHONHASHSEED, and the
# environment is clean_env()'s alone anyway.
ZYGOTE_FLAGS = ("-s", "-B")
# How long a cancelled run waits for the zygote to confirm its worker is dead (it takes ~1 ms).
CANCEL_WAIT_S = 2.0

__all__ = ["Pool", "RunOutcome", "Overloaded", "Unavailable", "SandboxStartError", "SandboxLimits"]


def clean_env(passthrough: tuple[str, ...]) -> dict[str, str]:
    """The zygote's whole environment: nothing of the server's leaks into snippets. No PYTHON*
    name passes through: the interpreter reads those (it runs without -E, see ZYGOTE_FLAGS)."""
    env = {
        # The same string hashes in every zygote, so set and dict-of-set iteration order (what
        # print({'a', 'b', 'c'}) shows) is the same on every replica and after every restart.
        "PYTHONHASHSEED": "0",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": "/nonexistent",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        # is_available() via NVML does not initialise CUDA, should anything in the zygote call it
        "PYTORCH_NVML_BASED_CUDA_CHECK": "1",
    }
    env.update(
        {n: os.environ[n] for n in passthrough if n in os.environ and not n.upper().startswith("PYTHON")}
    )
    return env


async def _read_frame(reader: asyncio.StreamReader, max_size: int) -> bytes:
    (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
    if size > max_size:
        raise FrameTooLarge(size, max_size)
    return await reader.readexactly(size)


def _stdin(proc: asyncio.subprocess.Process) -> asyncio.StreamWriter:
    if proc.stdin is None:  # never: the zygote is started with both pipes
        raise RuntimeError("zygote started without a stdin pipe")
    return proc.stdin


def _stdout(proc: asyncio.subprocess.Process) -> asyncio.StreamReader:
    if proc.stdout is None:
        raise RuntimeError("zygote started without a stdout pipe")
    return proc.stdout


def _log_confinement(report: dict) -> None:
    active = ", ".join(report.get("active", [])) or "none"
    print(f"sandbox: confinement layers active: {active}", file=sys.stderr)
    for name, why in (report.get("missing") or {}).items():
        print(f"sandbox: confinement layer {name} missing: {why}", file=sys.stderr)


class Pool:
    def __init__(
        self,
        limits: SandboxLimits,
        *,
        max_concurrent_runs: int = 4,
        queue_max: int = 64,
        spares: int = 2,
        python: str = sys.executable,
        cwd: str | os.PathLike = REPO_ROOT,
        env_passthrough: tuple[str, ...] = ("CUDA_VISIBLE_DEVICES",),
        start_timeout_s: float = 60.0,
        zygote_module: str = "app.sandbox.zygote",  # tests start one with layers of their own
    ) -> None:
        self.limits = limits
        self.max_concurrent_runs = max_concurrent_runs
        self.queue_max = queue_max
        self.spares = spares
        self._argv = [python, *ZYGOTE_FLAGS, "-m", zygote_module]
        self._cwd = str(cwd)
        self._env = clean_env(tuple(env_passthrough))
        self.start_timeout_s = start_timeout_s
        self.state = "starting"
        self.restarts = 0
        self.ready_info: dict[str, Any] = {}
        self._proc: asyncio.subprocess.Process | None = None
        self._sem = asyncio.Semaphore(max_concurrent_runs)
        self._queued = 0
        self._busy = 0
        self._spares_idle = 0
        self._pending: dict[int, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task] = set()
        self._backoff_s = BACKOFF_FIRST_S

    # ---- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        self.state = "starting"
        try:
            await self._launch()
        except BaseException:
            self.state = "down"
            raise

    async def _launch(self) -> None:
        proc = await asyncio.create_subprocess_exec(
            *self._argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=self._cwd,
            env=self._env,
            start_new_session=True,
        )
        try:
            config = {"limits": self.limits.to_dict(), "spares": self.spares}
            _stdin(proc).write(encode_frame(json.dumps(config).encode()))
            frame = await asyncio.wait_for(_read_frame(_stdout(proc), HEADER_MAX_BYTES), self.start_timeout_s)
            ready = json.loads(frame)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            await self._kill(proc)
            raise SandboxStartError(f"zygote did not start: {exc!r} (exit code {proc.returncode})") from exc
        if ready.get("type") != "ready":
            await self._kill(proc)
            raise SandboxStartError(f"zygote refused to start: {ready.get('reason')}")
        self._proc, self.ready_info = proc, ready
        _log_confinement(ready.get("confinement") or {})
        self._spares_idle = 0
        self.state = "ready"
        self._spawn_task(self._read_loop(proc))

    def _spawn_task(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _kill(proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session (start_new_session)
            except ProcessLookupError:
                pass
        await proc.wait()

    async def close(self) -> None:
        self.state = "down"
        proc, self._proc = self._proc, None
        for task in list(self._tasks):
            task.cancel()
        if proc is not None:
            _stdin(proc).close()  # EOF: the zygote kills its children and exits
            try:
                await asyncio.wait_for(proc.wait(), 2.0)
            except TimeoutError:
                pass
            await self._kill(proc)
        self._fail_pending("closed")

    def _fail_pending(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(Unavailable(self._retry_after_s(), reason))

    # ---- zygote output -----------------------------------------------------------------------
    async def _read_loop(self, proc: asyncio.subprocess.Process) -> None:
        reason = "the zygote died"
        try:
            while True:
                header = json.loads(await _read_frame(_stdout(proc), HEADER_MAX_BYTES))
                payload = await _read_frame(_stdout(proc), self.limits.result_max_bytes + HEADER_MAX_BYTES)
                self._spares_idle = header.get("spares_idle", 0)
                fut = self._pending.pop(header["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result((header, payload))
        except (asyncio.IncompleteReadError, ConnectionError, FrameTooLarge, ValueError, KeyError) as exc:
            reason = f"the zygote died ({type(exc).__name__})"
        if self._proc is proc and self.state != "down":
            await self._replace(proc, reason)

    async def _replace(self, proc: asyncio.subprocess.Process, reason: str) -> None:
        """Fail what was in flight on the dead zygote, then start a new one with backoff."""
        self.state = "restarting"
        self._proc = None
        self._fail_pending(reason)
        await self._kill(proc)
        while self.state == "restarting":
            await asyncio.sleep(self._backoff_s)
            self._backoff_s = min(self._backoff_s * 2, BACKOFF_MAX_S)
            try:
                await self._launch()
            except SandboxStartError as exc:
                print(f"sandbox: zygote restart failed: {exc}", file=sys.stderr)
                continue
            self.restarts += 1

    def _retry_after_s(self) -> float:
        return round(self._backoff_s + 2.0, 1) if self.state != "down" else 60.0

    async def wait_ready(self, timeout_s: float) -> None:
        """Wait until a (re)started zygote is ready; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout_s
        while self.state != "ready":
            if time.monotonic() > deadline or self.state == "down":
                raise TimeoutError(f"sandbox not ready (state {self.state})")
            await asyncio.sleep(0.02)

    # ---- runs --------------------------------------------------------------------------------
    def _check_available(self) -> asyncio.subprocess.Process:
        """The running zygote, or Unavailable."""
        if self.state != "ready" or self._proc is None:
            raise Unavailable(self._retry_after_s(), f"sandbox is {self.state}")
        return self._proc

    async def run(
        self,
        code: str,
        *,
        timeout_s: float | None = None,
        trace: dict | bool | None = None,
        seed: int = 0,
    ) -> RunOutcome:
        """`trace`: truthy to step through (caps as in app.sandbox.trace.DEFAULTS); `seed`: what
        torch, numpy and random start from (0 <= seed < protocol.SEED_END)."""
        if not 0 <= seed < SEED_END:
            raise ValueError(f"seed {seed} is outside 0 <= seed < {SEED_END}")
        self._check_available()
        if self._sem.locked() and self._queued >= self.queue_max:
            raise Overloaded(retry_after_s=1.0)
        queued_at = time.monotonic()
        self._queued += 1
        try:
            await self._sem.acquire()
        finally:
            self._queued -= 1
        self._busy += 1
        try:
            self._check_available()
            queue_ms = round((time.monotonic() - queued_at) * 1000.0, 3)
            return await self._submit(code, timeout_s, queue_ms, trace, seed)
        finally:
            self._busy -= 1
            self._sem.release()

    async def _submit(
        self,
        code: str,
        timeout_s: float | None,
        queue_ms: float,
        trace: dict | bool | None = None,
        seed: int = 0,
    ) -> RunOutcome:
        proc = self._check_available()  # run() checked it just now, with no await in between
        req_id = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        try:
            request = {"id": req_id, "code": code, "timeout_s": timeout_s, "seed": seed}
            if trace:
                request["trace"] = trace
                precompiled = instrument.precompile(code)  # the worker's slowest step, done warm
                if precompiled is not None:
                    request["precompiled"] = precompiled
            _stdin(proc).write(encode_frame(json.dumps(request).encode()))
            await _stdin(proc).drain()
            budget = (timeout_s or self.limits.exec_timeout_s) + self.limits.kill_grace_s + ZYGOTE_SLACK_S
            header, payload = await asyncio.wait_for(fut, budget)
        except ConnectionError as exc:
            raise Unavailable(self._retry_after_s(), "the zygote died") from exc
        except asyncio.CancelledError:
            await self._cancel(proc, req_id)  # before `finally` frees the slot
            raise
        except TimeoutError as exc:
            await self._kill(proc)  # wedged: the read loop sees EOF and replaces it
            raise Unavailable(self._retry_after_s(), "the zygote stopped answering") from exc
        finally:
            self._pending.pop(req_id, None)
        self._backoff_s = BACKOFF_FIRST_S  # a completed run proves the zygote healthy
        return RunOutcome(
            status=header["status"],
            payload=payload,
            signal=header.get("signal"),
            exit_code=header.get("exit_code"),
            wall_ms=header.get("wall_ms", 0.0),
            queue_ms=queue_ms,
            pid=header.get("pid"),
            seed=seed,
        )

    async def _cancel(self, proc: asyncio.subprocess.Process, req_id: int) -> None:
        """The caller gave up on run `req_id`: the zygote kills its worker's process group and
        answers, and only then is the slot free, so a new run never shares a core with a
        child nobody waits for. wait_for cancelled the first future; the answer resolves a new one."""
        if proc is not self._proc or proc.returncode is not None:
            return  # a dead zygote took its children with it
        answered = asyncio.get_running_loop().create_future()
        self._pending[req_id] = answered
        try:
            _stdin(proc).write(encode_frame(json.dumps({"id": req_id, "op": "cancel"}).encode()))
            await asyncio.wait_for(answered, CANCEL_WAIT_S)
        except (TimeoutError, ConnectionError, Unavailable):
            pass  # the zygote died or is wedged; the read loop or the run deadline handles it

    async def diagnostics(self) -> dict[str, Any]:
        """Ask the zygote about itself (e.g. {"cuda_initialized": false}); for checks and tests."""
        proc = self._check_available()
        req_id = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        _stdin(proc).write(encode_frame(json.dumps({"id": req_id, "op": "diag"}).encode()))
        _, payload = await asyncio.wait_for(fut, ZYGOTE_SLACK_S)
        return json.loads(payload)

    def health(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "ready": self._spares_idle if self.state == "ready" else 0,
            "busy": self._busy,
            "queued": self._queued,
            "max_concurrent_runs": self.max_concurrent_runs,
            "queue_max": self.queue_max,
            "restarts": self.restarts,
            "zygote_pid": self._proc.pid if self._proc else None,
            "uid_drop": self.ready_info.get("uid_drop", {"active": False, "reason": "not started"}),
            "memory_rlimit": self.ready_info.get("memory_rlimit"),
            "confinement": self.ready_info.get("confinement", {"active": [], "missing": {}}),
            "limits": self.limits.to_dict(),
        }
