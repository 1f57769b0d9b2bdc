"""The one /proc/<pid>/status reader (children's rlimits, the zygote's ready frame, benches)."""

from __future__ import annotations

import os
import resource

from app.sandbox.procstatus import status_fields, status_kib


def test_memory_fields_are_read_in_kib():
    fields = status_fields(os.getpid())
    assert fields["Pid"] == str(os.getpid())
    hwm_kib = status_kib("VmHWM")
    # ru_maxrss is the same peak (in KiB on Linux), read through another interface.
    assert (
        hwm_kib is not None and abs(hwm_kib - resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) < 64 * 1024
    )
    assert status_kib("VmSize", os.getpid()) >= status_kib("VmRSS", os.getpid())  # type: ignore[operator]


def test_a_missing_field_or_process_is_none():
    assert status_kib("NoSuchField") is None
    assert status_kib("VmRSS", 2**22 + 7) is None  # above the kernel's pid_max: never a process
