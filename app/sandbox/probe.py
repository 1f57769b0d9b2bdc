"""Start-up decisions of the zygote: can children drop to the sandbox uid, how is memory capped,
and which child confinement layers the kernel really accepts (a throw-away child confined like a
spare). Decided once, reported in the ready frame and in the pool's health."""

from __future__ import annotations

import json
import os
import select
import signal
import sys
from typing import NamedTuple

from app.sandbox.child import ChildPlan, drop_uid
from app.sandbox.layers import LayerReport
from app.sandbox.limits import SandboxLimits

PROBE_TIMEOUT_S = 10.0


def paths_to_check() -> list[str]:
    """Directories a child may lazily import from, plus one file known to live in each tree."""
    import torch  # already imported by the zygote

    paths = [p for p in sys.path if p and os.path.isdir(p)]
    paths += [os.__file__, torch.__file__, os.getcwd()]
    app_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths.append(os.path.join(app_dir, "__init__.py"))
    return list(dict.fromkeys(paths))


def _first_unreadable(path: str) -> str | None:
    """Walk from / down to path as the current (dropped) uid; return the first blocker."""
    parts = os.path.abspath(path).split(os.sep)
    for i in range(2, len(parts) + 1):
        prefix = os.sep.join(parts[:i]) or os.sep
        try:
            if os.path.isdir(prefix):
                os.listdir(prefix)
            else:
                with open(prefix, "rb") as f:
                    f.read(1)
        except OSError as exc:
            return f"{prefix} ({type(exc).__name__})"
    return None


def _probe_child(write_fd: int, uid: int, gid: int, paths: list[str]) -> None:
    try:
        drop_uid(uid, gid)
        blocked = [b for b in map(_first_unreadable, paths) if b]
        os.write(write_fd, json.dumps(blocked).encode())
    finally:
        os._exit(0)


def _ask_forked(child_fn, *args) -> bytes:
    """Fork, let child_fn(write_fd, *args) answer (it must not return), and read its answer.

    Never waits past PROBE_TIMEOUT_S: a probe that hangs or dies answers b"" and is always
    killed and reaped."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        child_fn(write_fd, *args)
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], PROBE_TIMEOUT_S)
        return os.read(read_fd, 1 << 20) if ready else b""
    finally:
        os.close(read_fd)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def probe_readable_as(uid: int, gid: int, paths: list[str]) -> list[str]:
    """Fork a child that drops to uid and tries each path. Returns the unreadable ones;
    a probe that hangs or dies counts as failed rather than blocking the start-up."""
    data = _ask_forked(_probe_child, uid, gid, paths)
    if not data:
        return ["probe child produced no answer"]
    return json.loads(data)


class UidDrop(NamedTuple):
    """Whether children drop to the sandbox uid; its _asdict() is the ready frame's uid_drop."""

    active: bool
    reason: str


def uid_drop_plan(limits: SandboxLimits) -> UidDrop:
    if os.geteuid() != 0:
        return UidDrop(False, "server is not root; children keep its uid")
    blocked = probe_readable_as(limits.sandbox_uid, limits.sandbox_gid, paths_to_check())
    if blocked:
        return UidDrop(False, "sandbox uid cannot read: " + ", ".join(blocked))
    return UidDrop(True, f"children run as uid {limits.sandbox_uid}")


def memory_rlimit_mode(limits: SandboxLimits) -> str:
    if limits.memory_rlimit != "auto":
        return limits.memory_rlimit
    import torch

    cuda_possible = torch.version.cuda is not None and os.path.exists("/dev/nvidiactl")
    return "data" if cuda_possible else "as"


def nproc_limit(limits: SandboxLimits, uid_drop_active: bool) -> int | None:
    """RLIMIT_NPROC counts every process of the real uid. After the drop that is only sandbox
    children. Without it, it would also count the server user's own processes, so a low cap
    would break forks (and thread starts) for reasons unrelated to the snippet: add the
    user's current task count (threads count too). Root ignores RLIMIT_NPROC altogether."""
    if uid_drop_active:
        return limits.processes_max
    uid = os.getuid()
    count = 0
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and os.stat(f"/proc/{entry}").st_uid == uid:
                count += len(os.listdir(f"/proc/{entry}/task"))
        except OSError:
            continue
    return count + limits.processes_max


def _confinement_probe_child(write_fd: int, plan: ChildPlan, zygote_pid: int) -> None:
    from app.sandbox.child import confine

    try:
        reports = confine(plan, (write_fd, write_fd), zygote_pid)
        os.write(write_fd, json.dumps({n: r.to_dict() for n, r in reports.items()}).encode())
    finally:
        os._exit(0)


def confinement_probe(plan: ChildPlan) -> dict[str, LayerReport]:
    """Confine a throw-away child exactly like a spare and return its per-layer report: what
    the kernel actually accepted here, not what it claims to support."""
    data = _ask_forked(_confinement_probe_child, plan, os.getpid())
    if not data:
        return {"no_new_privs": LayerReport(False, "confinement probe produced no answer")}
    return {n: LayerReport(bool(r["active"]), str(r["detail"])) for n, r in json.loads(data).items()}
