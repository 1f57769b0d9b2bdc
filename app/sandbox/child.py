"""What a freshly forked child does before and after its job arrives.

Order matters: new session (so the zygote can kill the run's whole process group), drop every
inherited fd, rlimits, then the uid drop, then PR_SET_PDEATHSIG (a credential change clears it),
then the child layers of app.sandbox.layers, then block on the job pipe. The zygote forks these
ahead of time ("spares"), each with the same ChildPlan.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
from dataclasses import dataclass

from app.sandbox import confinement
from app.sandbox.confinement import ChildLayers
from app.sandbox.layers import LayerReport
from app.sandbox.limits import SandboxLimits
from app.sandbox.procstatus import status_kib
from app.sandbox.protocol import read_frame, write_frame
from app.sandbox.runner import run_snippet
from app.sandbox.trace_options import TraceOptions

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
JOB_MAX_BYTES = 64 * 1024 * 1024
# What every run does (exec, a tensor, snapshot, encode, a print). Not print(tensor): its
# formatting code copies ~900 pages (6 ms in a fresh child, measured), a cost only the snippets
# that print tensors should pay; in every spare it would halve the runs per second.
PREWARM_SNIPPET = "import torch\nx = torch.ones(2)\nprint(x.shape)"
# Sent when the snippet leaves too little memory to encode its result (json.dumps raised
# MemoryError): encoded up front, because by then there is no memory left to encode it.
_EMPTY = {"text": "", "truncated": True}
MEMORY_FALLBACK = json.dumps(
    {
        "ok": False,
        "stdout": _EMPTY,
        "stderr": _EMPTY,
        "duration_ms": 0.0,
        "snapshot": None,
        "warnings": [],
        "error": {
            "type": "MemoryLimit",
            "message": "the run left too little memory to report its result",
            "line": None,
            "traceback": [],
        },
    }
).encode()


_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class ChildPlan:
    """Decided once by the zygote (app.sandbox.zygote._plan), applied by every child it forks."""

    limits: SandboxLimits
    memory_rlimit: str  # "as" or "data": which rlimit caps the memory budget
    nproc: int | None  # RLIMIT_NPROC, or None to leave it
    drop_uid: bool  # setresuid to limits.sandbox_uid (the server is root and the probe passed)
    layers: ChildLayers  # the child confinement layers' decisions
    # Filled in from the probe child: the layers every child must apply, or it exits (72).
    expect_layers: tuple[str, ...] = ()


def _prctl(option: int, arg: int) -> None:
    if _libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def _reset_signals() -> None:
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    # Writing past RLIMIT_FSIZE should be an OSError in the snippet, not a silent death.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _isolate_fds(keep: tuple[int, ...]) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if fd != null:
            os.dup2(null, fd)
    low = 3
    for fd in sorted(set(keep)):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)


def _own_kib(field: str) -> int:
    kib = status_kib(field)
    if kib is None:
        raise RuntimeError(f"{field} missing from /proc/self/status")
    return kib


def _set(which: int, value: int) -> None:
    resource.setrlimit(which, (value, value))


def apply_rlimits(limits: SandboxLimits, memory_rlimit: str, nproc: int | None) -> None:
    # Base on our own size (= the zygote's at fork time) so the budget is what the snippet gets.
    budget = limits.memory_budget_mb * 1024 * 1024
    if memory_rlimit == "data":
        _set(resource.RLIMIT_DATA, _own_kib("VmData") * 1024 + budget)
    else:
        _set(resource.RLIMIT_AS, _own_kib("VmSize") * 1024 + budget)
    # Soft CPU limit sends SIGXCPU; the hard one a second later is SIGKILL.
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_time_s, limits.cpu_time_s + 1))
    _set(resource.RLIMIT_FSIZE, limits.file_size_max_bytes)
    _set(resource.RLIMIT_NOFILE, limits.open_files_max)
    _set(resource.RLIMIT_CORE, 0)
    if nproc is not None:
        _set(resource.RLIMIT_NPROC, nproc)


def drop_uid(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def confine(plan: ChildPlan, keep: tuple[int, int], zygote_pid: int) -> dict[str, LayerReport]:
    """Everything but the job. Returns the child layers' reports (app.sandbox.confinement)."""
    os.setsid()
    _reset_signals()
    _isolate_fds((*keep, *plan.layers.keep_fds()))  # the layers' fds, e.g. Landlock's ruleset
    limits = plan.limits
    apply_rlimits(limits, plan.memory_rlimit, plan.nproc)
    if plan.drop_uid:
        drop_uid(limits.sandbox_uid, limits.sandbox_gid)
        # Other sandbox children share this uid: forbid ptrace / /proc/<pid>/mem among them.
        _prctl(PR_SET_DUMPABLE, 0)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != zygote_pid:  # the zygote died before PDEATHSIG was armed
        os._exit(1)
    return confinement.apply_child_layers(plan.layers)


def seed_run(seed: int) -> None:
    """Seed torch, numpy's global generator and Python's `random` with the run's seed. Called
    right before the snippet, after the spare's prewarm and whatever the zygote's warm-up drew,
    so the same code gives the same numbers on every run and every replica. Not pinned: time,
    os.urandom, uuid4, secrets, and generators the snippet makes unseeded (np.random.default_rng()).

    What torch.manual_seed does, without its cost: it queues a lazy seed for CUDA, XPU and MPS,
    each capturing the stack, present or not (0.35 ms a run here; this function takes 0.02 ms). CUDA
    is seeded on builds that have it, queued until the snippet first initialises it."""
    import random

    import numpy
    import torch

    random.seed(seed)
    numpy.random.seed(seed)
    torch.default_generator.manual_seed(seed)
    if torch.version.cuda is not None or torch.version.hip is not None:
        torch.cuda.manual_seed_all(seed)


def child_main(plan: ChildPlan, job_r: int, res_w: int, zygote_pid: int) -> None:
    """Body of a spare: confine, wait for the job, run it, send one frame, _exit. Never returns."""
    code = 70
    try:
        layers = confine(plan, (job_r, res_w), zygote_pid)
        if confinement.missing_required(layers, plan.expect_layers):
            os._exit(72)  # fail closed: never run a job less confined than the probe was
        # Pre-fault (copy-on-write) the pages a run touches while we are still a spare: ~1.5 ms
        # per run moved off the request's critical path. Our own constant code: nothing leaks.
        run_snippet(PREWARM_SNIPPET, plan.limits)
        job = json.loads(read_frame(job_r, JOB_MAX_BYTES))
        os.close(job_r)
        me = os.getpid()
        seed = job.get("seed") or 0
        try:
            seed_run(seed)
            payload = run_snippet(
                job["code"],
                SandboxLimits.from_dict(job["limits"]),
                trace=TraceOptions.from_wire(job["trace"]) if job.get("trace") else None,
                precompiled=job.get("precompiled"),
                seed=seed,
            )
        except MemoryError:
            payload = MEMORY_FALLBACK
        # A process the snippet forked also returns here; only the child itself may answer,
        # or interleaved frames would garble the result.
        if os.getpid() == me:
            write_frame(res_w, payload)
        code = 0
    except BaseException:  # nothing may escape a forked child
        code = 71
    finally:
        os._exit(code)
