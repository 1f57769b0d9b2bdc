"""Landlock (Linux >= 5.13) through its raw syscalls: unprivileged, so it also holds in a default
Docker container. The PyPI `landlock` package covers files only; we also need the TCP rules
(ABI >= 4) and the signal / abstract-socket scoping (ABI >= 6).

Policy of a sandbox child: read-only access beneath a short list of paths (what Python, torch
and numpy load lazily), no writes or creation anywhere, no TCP bind or connect, no signals and
no abstract unix sockets across the domain boundary. Whatever the kernel's ABI lacks is reported
as missing rather than failing; `restrict()` is all-or-nothing for what it does apply.
"""

from __future__ import annotations

import ctypes
import os
import platform

# x86_64 and aarch64 share these numbers (they were added after the syscall tables unified).
SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1 << 0
RULE_PATH_BENEATH, RULE_NET_PORT = 1, 2

FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_ABI1 = (1 << 13) - 1  # execute .. make_sym
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1
FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # __attribute__((packed)) in the uapi header: 12 bytes
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class LandlockError(OSError):
    pass


def _syscall(nr: int, *args: object) -> int:
    res = _libc.syscall(ctypes.c_long(nr), *args)
    if res < 0:
        err = ctypes.get_errno()
        raise LandlockError(err, f"landlock syscall {nr}: {os.strerror(err)}")
    return res


def abi_version() -> int:
    """The kernel's Landlock ABI, or 0 when Landlock is absent or disabled (or not x86/arm64)."""
    if platform.machine() not in ("x86_64", "aarch64"):
        return 0
    try:
        return _syscall(SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_RULESET_VERSION))
    except LandlockError:
        return 0


def handled(abi: int, skip: tuple[str, ...] = ()) -> dict[str, int]:
    """What a ruleset restricts at this ABI, less the layers named in skip."""
    fs = FS_ABI1 if abi >= 1 else 0
    fs |= FS_REFER if abi >= 2 else 0
    fs |= FS_TRUNCATE if abi >= 3 else 0
    fs |= FS_IOCTL_DEV if abi >= 5 else 0
    net = NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 and "landlock_net" not in skip else 0
    scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 and "landlock_scope" not in skip else 0
    return {"fs": fs, "net": net, "scoped": scoped}


def describe(abi: int, skip: tuple[str, ...] = ()) -> dict:
    """{"fs": bool, "net": bool, "scope": bool, "missing": [str]} for reports."""
    h = handled(abi, skip)
    missing = []
    if not h["fs"]:
        missing.append("filesystem rules (Landlock unavailable)")
    if not h["net"]:
        missing.append("TCP bind/connect rules (needs ABI 4, Linux 6.7)")
    if not h["scoped"]:
        missing.append("signal and abstract-socket scoping (needs ABI 6, Linux 6.12)")
    return {"fs": bool(h["fs"]), "net": bool(h["net"]), "scope": bool(h["scoped"]), "missing": missing}


def _add_path(ruleset_fd: int, path: str, access: int) -> bool:
    """Allow `access` beneath path; False when the path does not exist here."""
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if not os.path.isdir(path):
            access &= FILE_RIGHTS  # directory rights on a file are EINVAL
        attr = _PathBeneathAttr(access, fd)
        _syscall(
            SYS_ADD_RULE,
            ctypes.c_int(ruleset_fd),
            ctypes.c_int(RULE_PATH_BENEATH),
            ctypes.byref(attr),
            ctypes.c_uint32(0),
        )
    finally:
        os.close(fd)
    return True


def create_ruleset(
    abi: int, read_paths: list[str], rw_files: list[str], skip: tuple[str, ...] = ()
) -> tuple[int, int]:
    """Build the policy above once (in the zygote); returns (ruleset fd, path rules added).
    A ruleset is not tied to a process: every forked child restricts itself with the same fd."""
    h = handled(abi, skip)
    attr = _RulesetAttr(h["fs"], h["net"], h["scoped"])
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8  # older kernels reject unknown trailing fields
    ruleset_fd = _syscall(SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    try:
        added = sum(_add_path(ruleset_fd, p, FS_READ_FILE | FS_READ_DIR) for p in read_paths)
        rw = FS_READ_FILE | FS_WRITE_FILE | (FS_IOCTL_DEV if abi >= 5 else 0)
        added += sum(_add_path(ruleset_fd, p, rw) for p in rw_files)
    except BaseException:
        os.close(ruleset_fd)
        raise
    # No net rule at all: with TCP handled, every bind() and connect() is denied.
    return ruleset_fd, added


def restrict_self(ruleset_fd: int) -> None:
    """Enforce the ruleset on the calling thread and what it creates later; needs
    PR_SET_NO_NEW_PRIVS (or CAP_SYS_ADMIN). Closes the fd: nothing later needs it."""
    try:
        _syscall(SYS_RESTRICT_SELF, ctypes.c_int(ruleset_fd), ctypes.c_uint32(0))
    finally:
        os.close(ruleset_fd)
