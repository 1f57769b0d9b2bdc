"""Fields of /proc/<pid>/status, the one parser of it (sandbox start-up, children, benches).

Memory fields ("VmSize:   123456 kB") are read in KiB; a field the kernel does not have (or a
process that is gone) is None, and each caller decides what that means.
"""

from __future__ import annotations


def status_fields(pid: int | str = "self") -> dict[str, str]:
    """Every `Name:\\tvalue` line of /proc/<pid>/status, values stripped."""
    with open(f"/proc/{pid}/status") as f:
        return {name: value.strip() for name, sep, value in (line.partition(":") for line in f) if sep}


def status_kib(field: str, pid: int | str = "self") -> int | None:
    """One memory figure (VmSize, VmData, VmRSS, VmHWM, ...) in KiB, or None without it."""
    try:
        value = status_fields(pid).get(field)
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(value.split()[0]) if value else None
