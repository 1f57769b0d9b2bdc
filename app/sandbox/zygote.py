"""The zygote: `python -s -B -m app.sandbox.zygote`, started by app.sandbox.pool.Pool with
PYTHONHASHSEED=0 (string hashes, and so set order, the same on every replica).

Imports torch once, single-threaded (a zygote that ever ran an OpenMP parallel region forks
children that hang at their first threaded op), warms up the lazy code paths a snippet is
likely to hit, freezes the GC (so children do not dirty the shared pages), and then forks one
child per run. It never initialises CUDA: children of a CUDA-initialised parent cannot use it.
Frames are described in app.sandbox.protocol.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import platform
import signal
import sys
from typing import NamedTuple

from app.sandbox import child, confinement, hugepages, probe
from app.sandbox.child import ChildPlan
from app.sandbox.layers import LayerReport, Stage
from app.sandbox.limits import SandboxLimits, parse_disabled, parse_required
from app.sandbox.procstatus import status_kib
from app.sandbox.protocol import read_frame, write_frame
from app.sandbox.runner import run_snippet
from app.sandbox.supervisor import Supervisor

CONFIG_MAX_BYTES = 1 << 20
WARMUP_TIMEOUT_S = 300.0
WARMUP_RESULT_MAX_BYTES = 16 * 1024 * 1024
WARM_TRACES = (False, True, {"states": False})  # plain, stepped with states, stepped changes-only

# Touches the lazy paths (optimizer.step alone imports ~800 modules: seconds per child if cold).
# No backward(): on CUDA builds the autograd engine would count devices (initialising the CUDA
# driver) and mark forked children as a "bad autograd fork".
WARMUP_SNIPPET = """
import torch, numpy as np
import torch.nn as nn, torch.nn.functional as F
a = torch.randn(8, 8)
b = (a @ a.t()).relu().sum(dim=0)
w = torch.randn(4, 4, requires_grad=True)
y = F.softmax(w * 2 + 1, dim=1).mean()
model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1))
out = model(torch.randn(2, 4))
for opt in (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
            torch.optim.Adam(model.parameters(), lr=0.1)):
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
arr = np.arange(6.0).reshape(2, 3)
t = torch.from_numpy(arr)
v = t[:, 1:].t()
print(v.shape)
"""


def _import_everything() -> None:
    import numpy  # noqa: F401
    import torch
    import torch.nn
    import torch.nn.functional
    import torch.optim
    import torch.utils.data

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    try:
        import app.inspector  # noqa: F401
    except ImportError:
        pass  # the runner records "inspector unavailable" per run
    import collections  # noqa: F401


def _vm_size_bytes() -> int:
    return (status_kib("VmSize") or 0) * 1024


def _plan(limits: SandboxLimits) -> tuple[ChildPlan, probe.UidDrop]:
    uid_drop = probe.uid_drop_plan(limits)
    plan = ChildPlan(
        limits=limits,
        memory_rlimit=probe.memory_rlimit_mode(limits),
        nproc=probe.nproc_limit(limits, uid_drop.active),
        drop_uid=uid_drop.active,
        layers=confinement.plan_child(parse_disabled(limits.disable_layers)),
    )
    return plan, uid_drop


class Confined(NamedTuple):
    plan: ChildPlan  # with expect_layers: what the probe child applied
    report: dict  # confinement.summary(), for the ready frame
    refuse: str | None  # why the zygote must not start, or None


def _confine_plan(plan: ChildPlan, zygote_layers: dict[str, LayerReport]) -> Confined:
    """Probe the child layers in a throw-away child and check the required ones."""
    probed = probe.confinement_probe(plan)
    reports = {**zygote_layers, **probed}
    plan = dataclasses.replace(plan, expect_layers=tuple(n for n, r in probed.items() if r.active))
    report = confinement.summary(reports, plan.layers.facts)
    missing = confinement.missing_required(reports, parse_required(plan.limits.require_layers))
    if missing:
        why = "; ".join(f"{n}: {reports[n].detail if n in reports else 'unknown'}" for n in missing)
        return Confined(plan, report, f"required confinement layers missing: {why}")
    return Confined(plan, report, None)


def _ready_frame(plan: ChildPlan, uid_drop: probe.UidDrop, sweeper_ok: bool) -> dict:
    import torch

    return {
        "type": "ready",
        "pid": os.getpid(),
        "vm_size": _vm_size_bytes(),
        "uid_drop": uid_drop._asdict(),  # an object, not the tuple json would make of it
        "memory_rlimit": plan.memory_rlimit,
        "nproc": plan.nproc,
        "cuda_initialized": bool(torch.cuda.is_initialized()),
        "stray_sweep": sweeper_ok,
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def _warm_up(limits: SandboxLimits) -> str | None:
    """Run the warm-up snippet (and the lesson examples); return why it failed, or None.

    It runs under its own generous time limit, not the snippets' one: on a loaded machine the
    ~800 imports behind opt.step() can outlast a short exec_timeout_s, and a warm-up interrupted
    mid-import leaves half-initialised modules (e.g. sympy without .printing) in sys.modules,
    which every forked child would inherit. A failed warm-up is therefore fatal.
    """
    import torch

    seed = torch.initial_seed()
    # A full-size result whatever the snippets' cap: the warm-up is for the code paths.
    warm = limits.replace(exec_timeout_s=WARMUP_TIMEOUT_S, result_max_bytes=WARMUP_RESULT_MAX_BYTES)
    try:
        return _warm_up_runs(warm)
    finally:
        _reset_torch_state(seed)
        _forget_tqdm()


def _warm_up_runs(warm: SandboxLimits) -> str | None:
    # Plain, then traced both ways: the step-through's first-use work (its modules' lazy paths)
    # done once here instead of in every child; ~0.8 ms and ~150 page faults less per traced run.
    for trace in WARM_TRACES:
        payload = json.loads(run_snippet(WARMUP_SNIPPET, warm, trace=trace))
        if not payload.get("ok"):
            error = payload.get("error") or {}
            return f"warm-up failed: {error.get('type')}: {error.get('message')}"
    _warm_up_lessons(warm)
    return None


def _reset_torch_state(seed: int) -> None:
    """What the warm-up's snippets may have switched (a lesson turns grad off, seeds...), back to
    a fresh import's: every child inherits the zygote's state."""
    import torch

    torch.set_grad_enabled(True)
    torch.set_default_dtype(torch.float32)
    torch.set_printoptions(profile="default")
    torch.autograd.set_detect_anomaly(False)
    torch.manual_seed(seed)


def _forget_tqdm() -> None:
    """A lesson's tqdm bar starts tqdm's monitor thread and makes its multiprocessing lock: the
    zygote would fork every child from two threads, and all children would share that lock (one
    killed while holding it would hang every later run's bars). Both go, so each child makes its
    own on its first bar, as after a fresh import."""
    std = sys.modules.get("tqdm.std")
    if std is None:
        return
    if std.tqdm.monitor is not None:
        std.tqdm.monitor.exit()
        std.tqdm.monitor = None
    for holder, name in ((std.tqdm, "_lock"), (std.TqdmDefaultWriteLock, "mp_lock")):
        if name in vars(holder):
            delattr(holder, name)


def _warm_up_lessons(warm: SandboxLimits) -> None:
    """The lesson examples, plain and traced (what learners run first): their lazy paths done here."""
    import torch

    if torch.version.cuda is not None or torch.version.hip is not None:
        return  # their backward() would start the autograd engine's device threads: bad fork
    import textwrap

    from app.examples import EXAMPLES

    for example in EXAMPLES:
        for trace in WARM_TRACES:
            run_snippet(textwrap.dedent(example.code), warm, trace=trace)  # errors are lessons too


def _fatal(resp_fd: int, reason: str) -> int:
    write_frame(resp_fd, json.dumps({"type": "fatal", "reason": reason}).encode())
    return 2


def main() -> int:
    resp_fd = os.dup(1)
    os.dup2(2, 1)  # stray prints (ours or a library's) must not corrupt the frames
    child._prctl(child.PR_SET_PDEATHSIG, signal.SIGKILL)  # die with the server
    config = json.loads(read_frame(0, CONFIG_MAX_BYTES))
    limits = SandboxLimits.from_dict(config["limits"])
    disabled = parse_disabled(limits.disable_layers)
    # Before anything a child could inherit (e.g. non-dumpable, own network namespace).
    zygote_layers = confinement.apply_zygote_stage(Stage.ZYGOTE_START, disabled)
    _import_everything()
    warm_error = _warm_up(limits)
    if warm_error:
        return _fatal(resp_fd, warm_error)
    plan, uid_drop = _plan(limits)
    if limits.require_uid_drop and not uid_drop.active:
        return _fatal(resp_fd, uid_drop.reason)
    zygote_layers.update(confinement.apply_zygote_stage(Stage.ZYGOTE_FORKS, disabled))
    confined = _confine_plan(plan, zygote_layers)
    if confined.refuse:
        return _fatal(resp_fd, confined.refuse)
    gc.collect()
    gc.freeze()  # children then never touch (copy) the zygote's objects' GC headers
    subreaper = zygote_layers.get("subreaper")
    ready = _ready_frame(confined.plan, uid_drop, sweeper_ok=bool(subreaper and subreaper.active))
    ready["confinement"] = confined.report
    ready["hugepages"] = hugepages.collapse_anonymous_memory()
    write_frame(resp_fd, json.dumps(ready).encode())
    Supervisor(limits, confined.plan, int(config.get("spares", 2)), 0, resp_fd).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
