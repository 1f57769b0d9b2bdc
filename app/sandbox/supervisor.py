"""The zygote's event loop: pre-forked spares, running children, deadlines, reaping.

One thread, one selector. Events: request frames on stdin, SIGCHLD (self-pipe via
signal.set_wakeup_fd), readable result pipes. A run completes when its full result frame
arrives, when its child is reaped without one (Crash), or at its hard deadline (TimeLimit).
On completion the child's whole session is SIGKILLed; EOF on the result pipe is never awaited,
because a grandchild may hold its write end forever.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import time
from collections import deque
from dataclasses import dataclass, field

from app.sandbox.child import ChildPlan, child_main
from app.sandbox.limits import SandboxLimits
from app.sandbox.protocol import FrameDecoder, FrameTooLarge, encode_frame, write_frame
from app.sandbox.strays import StraySweeper

REQUEST_MAX_BYTES = 64 * 1024 * 1024
FORK_RETRIES = 3


@dataclass
class Spare:
    pid: int
    job_w: int
    res_r: int


@dataclass
class Run:
    id: int
    pid: int
    res_r: int
    decoder: FrameDecoder
    started: float
    deadline: float
    done: bool = field(default=False)
    reaped: bool = field(default=False)  # waited for: its pid may belong to another process now


def _killpg(pid: int, *, child_too: bool = True) -> None:
    """SIGKILL the session of our child `pid`, and the child itself: a spare forked for this
    very job may not have called setsid() yet (a cancel can come at once), and killpg() alone
    then finds no such group and the worker lives on. `child_too` only while `pid` is not yet
    reaped (a zombie keeps its pid; a reaped pid may have been given to another process)."""
    kills = (os.killpg, os.kill) if child_too else (os.killpg,)
    for kill in kills:
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _describe_status(status: int) -> tuple[str | None, int | None]:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            return signal.Signals(sig).name, None
        except ValueError:
            return f"signal {sig}", None
    return None, os.waitstatus_to_exitcode(status)


class Supervisor:
    def __init__(self, limits: SandboxLimits, plan: ChildPlan, spares: int, req_fd: int, resp_fd: int):
        self.limits = limits
        self.plan = plan  # confinement plan handed to every child (see child.confine)
        self.spares_target = spares
        self.req_fd, self.resp_fd = req_fd, resp_fd
        self.spares: deque[Spare] = deque()
        self.runs: dict[int, Run] = {}  # by child pid, until reaped
        self.sweeper = StraySweeper()
        self.sel = selectors.DefaultSelector()
        self.requests = FrameDecoder(REQUEST_MAX_BYTES)
        self.stopping = False
        self.fork_ms: deque[float] = deque(maxlen=100)  # recent fork() costs, for diagnostics
        self._wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # the wakeup fd does the work
        os.set_blocking(req_fd, False)
        self.sel.register(req_fd, selectors.EVENT_READ, self._on_requests)
        self.sel.register(self._wake_r, selectors.EVENT_READ, self._on_sigchld)

    # ---- main loop -------------------------------------------------------------------------
    def serve(self) -> None:
        while not self.stopping:
            events = self.sel.select(self._timeout())
            for key, _ in events:
                key.data()
                if self.stopping:
                    break
            self._expire()
            if self.sweeper.due():
                self.sweeper.sweep(self._tracked_pids())
            if not events and len(self.spares) < self.spares_target:
                self.spares.append(self._fork_spare())  # only when idle: a fork costs ms
        self._shutdown()

    def _timeout(self) -> float | None:
        if len(self.spares) < self.spares_target:
            return 0.0
        waits = [r.deadline for r in self.runs.values() if not r.done]
        waits += [self.sweeper.next_at] if self.sweeper.next_at else []
        return max(0.0, min(waits) - time.monotonic()) if waits else None

    def _tracked_pids(self) -> set[int]:
        return {s.pid for s in self.spares} | set(self.runs)

    # ---- spares ----------------------------------------------------------------------------
    def _fork_spare(self) -> Spare:
        job_r, job_w = os.pipe()
        res_r, res_w = os.pipe()
        zygote_pid = os.getpid()
        started = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            child_main(self.plan, job_r, res_w, zygote_pid)  # never returns
        self.fork_ms.append((time.perf_counter() - started) * 1000.0)
        os.close(job_r)
        os.close(res_w)
        os.set_blocking(res_r, False)
        return Spare(pid, job_w, res_r)

    def _discard_spare(self, spare: Spare, *, kill: bool = True) -> None:
        if kill:  # not once reaped: its pid may belong to someone else by now
            _killpg(spare.pid)
        for fd in (spare.job_w, spare.res_r):
            os.close(fd)

    # ---- requests --------------------------------------------------------------------------
    def _on_requests(self) -> None:
        try:
            data = os.read(self.req_fd, 1 << 16)
        except BlockingIOError:
            return
        if not data:  # the server went away
            self.stopping = True
            return
        for frame in self.requests.feed(data):
            self._handle_request(json.loads(frame))

    def _handle_request(self, req: dict) -> None:
        if req.get("op") == "diag":
            self._respond(req["id"], "ok", json.dumps(self._diagnostics()).encode())
            return
        if req.get("op") == "cancel":
            self._cancel(req["id"])
            return
        limits = self.limits
        if req.get("timeout_s") is not None:
            limits = limits.replace(exec_timeout_s=float(req["timeout_s"]))
        job = json.dumps(
            {
                "code": req["code"],
                "limits": limits.to_dict(),
                "seed": req.get("seed") or 0,
                "trace": req.get("trace"),
                "precompiled": req.get("precompiled"),
            }
        ).encode()
        spare = self._hand_job(job)
        if spare is None:
            self._respond(req["id"], "error", b"could not start a worker")
            return
        now = time.monotonic()
        deadline = now + limits.exec_timeout_s + limits.kill_grace_s
        run = Run(req["id"], spare.pid, spare.res_r, FrameDecoder(limits.result_max_bytes), now, deadline)
        self.runs[spare.pid] = run
        self.sel.register(run.res_r, selectors.EVENT_READ, lambda: self._on_result(run))

    def _hand_job(self, job: bytes) -> Spare | None:
        for _ in range(FORK_RETRIES):
            spare = self.spares.popleft() if self.spares else self._fork_spare()
            try:
                write_frame(spare.job_w, job)
            except OSError:  # the spare died while waiting (EPIPE): take another
                self._discard_spare(spare)
                continue
            os.close(spare.job_w)
            return spare
        return None

    def _cancel(self, req_id: int) -> None:
        """The server gave up on run `req_id` (its client left): kill the worker's whole session
        now, and answer either way (an already finished run's answer may have crossed this
        request), so the server's slot is freed at once."""
        run = next((r for r in self.runs.values() if r.id == req_id and not r.done), None)
        if run is not None:
            self._finish(run, "cancelled")
        else:
            self._respond(req_id, "cancelled", b"")

    def _diagnostics(self) -> dict:
        import torch

        forks = sorted(self.fork_ms)
        return {
            "pid": os.getpid(),
            "cuda_initialized": bool(torch.cuda.is_initialized()),
            "spares_idle": len(self.spares),
            "running": sum(not r.done for r in self.runs.values()),
            "running_pids": sorted(r.pid for r in self.runs.values() if not r.done),
            "fork_ms_p50": round(forks[len(forks) // 2], 3) if forks else None,
        }

    # ---- results ---------------------------------------------------------------------------
    def _on_result(self, run: Run) -> None:
        while not run.done:
            try:
                data = os.read(run.res_r, 1 << 16)
            except BlockingIOError:
                return
            if not data:  # EOF without a frame: the reaper reports how the child died
                self._unregister(run.res_r)
                return
            try:
                frames = run.decoder.feed(data)
            except FrameTooLarge:
                self._finish(run, "result_too_large")
                return
            if frames:
                self._finish(run, "ok", frames[0])

    def _finish(
        self,
        run: Run,
        status: str,
        payload: bytes = b"",
        sig: str | None = None,
        exit_code: int | None = None,
    ) -> None:
        run.done = True
        _killpg(run.pid, child_too=not run.reaped)
        self._unregister(run.res_r)
        os.close(run.res_r)
        wall_ms = round((time.monotonic() - run.started) * 1000.0, 3)
        extra = {"signal": sig, "exit_code": exit_code, "wall_ms": wall_ms, "pid": run.pid}
        self._respond(run.id, status, payload, extra)

    def _unregister(self, fd: int) -> None:
        if fd in self.sel.get_map():
            self.sel.unregister(fd)

    def _respond(self, req_id: int, status: str, payload: bytes, extra: dict | None = None) -> None:
        header = {
            "id": req_id,
            "status": status,
            "signal": None,
            "exit_code": None,
            "wall_ms": 0.0,
            "pid": None,
            **(extra or {}),
            "spares_idle": len(self.spares),
        }
        data = encode_frame(json.dumps(header).encode()) + encode_frame(payload)
        view = memoryview(data)
        while view:
            view = view[os.write(self.resp_fd, view) :]

    def _expire(self) -> None:
        now = time.monotonic()
        for run in [r for r in self.runs.values() if not r.done and now >= r.deadline]:
            self._finish(run, "timeout")

    # ---- reaping ---------------------------------------------------------------------------
    def _on_sigchld(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._reaped(pid, status)

    def _reaped(self, pid: int, status: int) -> None:
        for spare in [s for s in self.spares if s.pid == pid]:
            self.spares.remove(spare)
            self._discard_spare(spare, kill=False)
        run = self.runs.pop(pid, None)
        if run is not None:
            run.reaped = True
            # Its orphans were re-parented to us before it could be reaped: sweep them now.
            self.sweeper.request()
        if run is None or run.done:
            return
        self._on_result(run)  # the frame may be fully buffered in the pipe already
        if not run.done:
            sig, code = _describe_status(status)
            self._finish(run, "crash", sig=sig, exit_code=code)

    def _shutdown(self) -> None:
        """Kill every child and reap them for up to a second, so none is left as a zombie."""
        for pid in self._tracked_pids():
            _killpg(pid)
        self.sweeper.sweep(set())
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                time.sleep(0.01)
