"""The seccomp filter of a sandbox child, built with libseccomp (pyseccomp).

Import this module in the zygote, never first in a child: importing pyseccomp runs
ctypes.util.find_library, which executes `ldconfig` - impossible once exec is denied.

Default allow, with a deny list: a lesson snippet needs hundreds of ordinary syscalls (threads,
mmap, futex, files), and what must never happen is a short, well-known list. Denials return
EPERM (ENOSYS for clone3), so the snippet gets a Python OSError instead of a silent kill.
The filter embeds the child's own pid. Building it with libseccomp costs ~1.4 ms in a fresh
child, so the zygote compiles it once with a placeholder pid (compile()) and each child patches
its pid into the BPF program and loads it with one prctl (install(), ~0.05 ms).
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct

try:
    import pyseccomp as _sc

    IMPORT_ERROR: str | None = None
except (ImportError, OSError, RuntimeError) as exc:  # RuntimeError: libseccomp not found
    _sc = None
    IMPORT_ERROR = f"{type(exc).__name__}: {exc}"

CLONE_THREAD = 0x00010000
# clone() flags that create namespaces: refused even together with CLONE_THREAD.
CLONE_NAMESPACE_FLAGS = (
    0x00020000,
    0x02000000,
    0x04000000,
    0x08000000,
    0x10000000,
    0x20000000,
    0x40000000,
    0x00000080,
)

# Denied outright: process images, kernel attack surface, other processes, namespaces, keys.
DENIED = (
    "execve",
    "execveat",
    "fork",
    "vfork",
    "socket",  # every family: AF_INET/6, netlink, packet, and AF_UNIX (it can reach host daemons)
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_open",
    "pidfd_send_signal",
    "pidfd_getfd",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "syslog",
    "iopl",
    "ioperm",
    "open_by_handle_at",
    "name_to_handle_at",
    "sethostname",
    "setdomainname",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "vhangup",
)
# (syscall, index of the pid/tgid argument): allowed only when it names this very process.
SELF_SIGNALS = (("kill", 0), ("tkill", 0), ("tgkill", 0), ("rt_sigqueueinfo", 0), ("rt_tgsigqueueinfo", 0))


def _resolve(names: tuple[str, ...]) -> dict[str, int]:
    """Syscall numbers, resolved once in the zygote (by name it costs ~0.7 ms per child).
    Names this architecture lacks (iopl on arm64, ...) resolve negative and are skipped."""
    if _sc is None:
        return {}
    numbers = {n: _sc.resolve_syscall(_sc.Arch.NATIVE, n) for n in names}
    return {n: nr for n, nr in numbers.items() if nr >= 0}


NR = _resolve(DENIED + ("clone3", "clone", "socketpair") + tuple(n for n, _ in SELF_SIGNALS))


def available() -> tuple[bool, str]:
    if _sc is None:
        return False, f"pyseccomp unavailable ({IMPORT_ERROR})"
    return True, "libseccomp via pyseccomp"


def build(own_pid: int):
    """The filter for the process own_pid (not loaded)."""
    eperm = _sc.ERRNO(errno.EPERM)
    f = _sc.SyscallFilter(_sc.ALLOW)
    for name in DENIED:
        if name in NR:
            f.add_rule(eperm, NR[name])
    # glibc falls back to clone() when clone3 says ENOSYS; clone's flags can be inspected
    # (clone3 passes them in memory, out of seccomp's reach).
    f.add_rule(_sc.ERRNO(errno.ENOSYS), NR["clone3"])
    f.add_rule(eperm, NR["clone"], _sc.Arg(0, _sc.MASKED_EQ, CLONE_THREAD, 0))  # a process, not a thread
    for flag in CLONE_NAMESPACE_FLAGS:
        f.add_rule(eperm, NR["clone"], _sc.Arg(0, _sc.MASKED_EQ, flag, flag))
    f.add_rule(eperm, NR["socketpair"], _sc.Arg(0, _sc.NE, socket.AF_UNIX))  # in-process pairs only
    for name, index in SELF_SIGNALS:
        f.add_rule(eperm, NR[name], _sc.Arg(index, _sc.NE, own_pid))
    return f


# Never a pid (pid_max <= 2**22), nor any other constant of the program (checked in compile()).
PID_PLACEHOLDER = 0x7EADBEEF
_INSN = struct.Struct("=HBBI")  # struct sock_filter {u16 code; u8 jt; u8 jf; u32 k}
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
_libc = ctypes.CDLL(None, use_errno=True)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def compile() -> dict:
    """The BPF program for a placeholder pid, and where that pid sits in it."""
    f = build(PID_PLACEHOLDER)
    try:
        f.set_attr(_sc.Attr.CTL_OPTIMIZE, 2)  # binary tree: allowed syscalls skip the long list
    except OSError:
        pass
    fd = os.memfd_create("seccomp-bpf")
    try:
        with os.fdopen(os.dup(fd), "rb") as out:  # pyseccomp only wants its fileno()
            f.export_bpf(out)
        os.lseek(fd, 0, os.SEEK_SET)
        program = b"".join(iter(lambda: os.read(fd, 1 << 16), b""))
    finally:
        os.close(fd)
    slots = [
        i for i in range(0, len(program), _INSN.size) if _INSN.unpack_from(program, i)[3] == PID_PLACEHOLDER
    ]
    if not slots:  # libseccomp shares one comparison block among the five signal syscalls
        raise OSError(errno.EINVAL, "pid placeholder not found in the compiled seccomp program")
    return {"program": program, "pid_slots": slots}


def install(compiled: dict, own_pid: int) -> str:
    """Patch own_pid into the program and load it on the calling thread (needs no_new_privs)."""
    program = bytearray(compiled["program"])
    for i in compiled["pid_slots"]:
        code, jt, jf, _ = _INSN.unpack_from(program, i)
        _INSN.pack_into(program, i, code, jt, jf, own_pid)
    buf = (ctypes.c_char * len(program)).from_buffer(program)
    prog = _SockFprog(len(program) // _INSN.size, ctypes.addressof(buf))
    if _libc.prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(prog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_SECCOMP): {os.strerror(err)}")
    return f"{sum(n in NR for n in DENIED) + 1} syscalls denied; clone, socketpair and signals by argument"
