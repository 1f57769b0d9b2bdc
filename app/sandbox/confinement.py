"""Kernel confinement layers: which exist here, applying them in a child, and the report.

Layers (names used in reports and in SandboxLimits.require_layers):
  zygote-wide, set once at start-up:
    dumpable_off    PR_SET_DUMPABLE 0 on the zygote: children cannot read /proc/<zygote>/environ,
                    maps or mem, nor ptrace it, even when they share its uid
    subreaper       PR_SET_CHILD_SUBREAPER: orphans of a run come back to the zygote and die
    netns           a private, empty network namespace (needs CAP_SYS_ADMIN; never by default)
  per child, applied to every spare before its job:
    no_new_privs    PR_SET_NO_NEW_PRIVS: no setuid gains; lets unprivileged Landlock/seccomp load
    seccomp         see app.sandbox.seccomp_filter
    landlock_fs     read-only beneath the paths of read_paths(), no writes anywhere
    landlock_net    no TCP bind/connect (Landlock ABI >= 4)
    landlock_scope  no signals / abstract unix sockets beyond the run (Landlock ABI >= 6)
The zygote learns what really works by confining a probe child (app.sandbox.zygote); a child
that later fails to apply a layer of the plan exits before taking a job (fail closed).
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys

from app.sandbox import landlock, seccomp_filter
from app.sandbox.limits import CHILD_LAYERS, LAYERS, ZYGOTE_LAYERS  # noqa: F401 (re-exported)

CLONE_NEWNET = 0x40000000
PR_SET_DUMPABLE = 4
DISABLED = "disabled by disable_layers"

_libc = ctypes.CDLL(None, use_errno=True)
APP_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Read-only system paths a snippet may need after the fork: shared libraries a lazy import
# dlopens (through ld.so.cache), time zones, entropy devices, CPU topology (os.cpu_count).
SYSTEM_READ_PATHS = (
    "/usr/lib",
    "/usr/lib64",
    "/usr/share/zoneinfo",
    "/etc/localtime",
    "/etc/ld.so.cache",
    "/dev/urandom",
    "/dev/random",
    "/dev/zero",
    "/sys/devices/system/cpu",
    "/proc/cpuinfo",
)
# Not /proc/self: the ruleset is built once in the zygote, where /proc/self is the zygote's.
RW_FILES = ("/dev/null",)
# What the CUDA driver opens when a snippet first uses the GPU (only when a GPU is present).
CUDA_READ_PATHS = ("/proc/driver/nvidia", "/sys/bus/pci", "/sys/devices")


def read_paths() -> list[str]:
    """Everything a child may read: the interpreter's import path minus the repository root
    (the project's own files stay private), the two app packages the child uses, system paths."""
    repo = os.path.dirname(APP_DIR)
    paths = [p for p in sys.path if p and os.path.abspath(p) != repo and os.path.exists(p)]
    paths += [
        os.path.join(APP_DIR, "__init__.py"),
        os.path.join(APP_DIR, "sandbox"),
        os.path.join(APP_DIR, "inspector"),
        *SYSTEM_READ_PATHS,
    ]
    if os.path.exists("/dev/nvidiactl"):
        paths += CUDA_READ_PATHS
    return list(dict.fromkeys(paths))


def rw_files() -> list[str]:
    return [*RW_FILES, *sorted(glob.glob("/dev/nvidia*"))]


def zygote_setup(disabled: tuple[str, ...]) -> dict[str, dict]:
    """Zygote-wide layers, except the subreaper (app.sandbox.strays owns it)."""
    layers = {}
    ok = _libc.prctl(PR_SET_DUMPABLE, ctypes.c_ulong(0), 0, 0, 0) == 0
    layers["dumpable_off"] = _layer(ok, "zygote not dumpable" if ok else _errno_text("prctl"))
    if "netns" in disabled:
        layers["netns"] = _layer(False, DISABLED)
        return layers
    ok = _libc.unshare(CLONE_NEWNET) == 0
    layers["netns"] = _layer(
        ok, "private network namespace, no interfaces up" if ok else _errno_text("unshare")
    )
    return layers


def _errno_text(what: str) -> str:
    err = ctypes.get_errno()
    return f"{what} failed: {os.strerror(err)}"


def _layer(active: bool, detail: str) -> dict:
    return {"active": bool(active), "detail": detail}


def child_plan(disabled: tuple[str, ...]) -> dict:
    """Decided once in the zygote, applied in every child (see apply_child_layers)."""
    seccomp_ok, seccomp_why = seccomp_filter.available()
    if "seccomp" in disabled:
        seccomp_ok, seccomp_why = False, DISABLED
    compiled = None
    if seccomp_ok:
        try:
            compiled = seccomp_filter.compile()
        except OSError as exc:
            seccomp_why = f"could not compile the filter: {exc}"
    abi = 0 if "landlock_fs" in disabled else landlock.abi_version()
    ruleset_fd, ruleset_why = (
        None,
        DISABLED
        if abi == 0 and "landlock_fs" in disabled
        else "Landlock not supported or disabled by this kernel",
    )
    if abi:
        try:
            ruleset_fd, rules = landlock.create_ruleset(abi, read_paths(), rw_files(), skip=disabled)
            ruleset_why = f"ABI {abi}: read-only beneath {rules} paths, no writes"
        except OSError as exc:
            ruleset_why = f"could not build the ruleset: {exc}"
    return {
        "landlock_abi": abi,
        "ruleset_fd": ruleset_fd,
        "ruleset_why": ruleset_why,
        "seccomp": compiled,
        "seccomp_why": seccomp_why,
        "disabled": disabled,
    }


def apply_child_layers(plan: dict) -> dict[str, dict]:
    """Landlock then seccomp on the calling (single-threaded) child, after no_new_privs.
    Returns the per-layer report; a layer that fails raises nothing here: the caller decides."""
    report: dict[str, dict] = {}
    abi = plan["landlock_abi"]
    what = landlock.describe(abi, skip=plan["disabled"])
    if plan["ruleset_fd"] is not None:
        try:
            landlock.restrict_self(plan["ruleset_fd"])
            report["landlock_fs"] = _layer(True, plan["ruleset_why"])
        except OSError as exc:
            report["landlock_fs"] = _layer(False, f"landlock_restrict_self failed: {exc}")
    else:
        report["landlock_fs"] = _layer(False, plan["ruleset_why"])
    if not report["landlock_fs"]["active"]:
        what = {"net": False, "scope": False}
    report["landlock_net"] = _layer(
        what["net"],
        "TCP bind/connect denied"
        if what["net"]
        else _why_not("landlock_net", plan, "needs Landlock ABI 4 (Linux 6.7)"),
    )
    report["landlock_scope"] = _layer(
        what["scope"],
        "signals and abstract sockets scoped"
        if what["scope"]
        else _why_not("landlock_scope", plan, "needs Landlock ABI 6 (Linux 6.12)"),
    )
    if plan["seccomp"]:
        try:
            report["seccomp"] = _layer(True, seccomp_filter.install(plan["seccomp"], os.getpid()))
        except OSError as exc:
            report["seccomp"] = _layer(False, f"seccomp_load failed: {exc}")
    else:
        report["seccomp"] = _layer(False, plan["seccomp_why"])
    return report


def _why_not(name: str, plan: dict, otherwise: str) -> str:
    if name in plan["disabled"] or "landlock_fs" in plan["disabled"]:
        return DISABLED
    return otherwise if plan["landlock_abi"] else "Landlock unavailable"


def summary(layers: dict[str, dict], abi: int) -> dict:
    """The shape reported by the ready frame, Pool.health() and GET /api/health."""
    return {
        "active": [n for n in LAYERS if layers.get(n, {}).get("active")],
        "missing": {n: layers[n]["detail"] for n in LAYERS if n in layers and not layers[n]["active"]},
        "landlock_abi": abi,
        "layers": layers,
    }


def missing_required(layers: dict[str, dict], required: tuple[str, ...]) -> list[str]:
    return [n for n in required if not layers.get(n, {}).get("active")]
