"""Back the zygote's anonymous memory with transparent huge pages, so that fork is cheap.

fork() copies one page-table entry per 4 KiB page of the parent's anonymous memory: ~200 MB of
Python heap and torch allocations after the imports made each fork cost 5-11 ms here. A 2 MiB
huge page is a single PMD entry, and after MADV_COLLAPSE (Linux >= 6.1) fork measured 1.0-1.3 ms.
A child that writes to a shared huge page only splits it and copies the 4 KiB it touched.
Best effort: any failure (older kernel, THP disabled) leaves the memory as it was.
"""

from __future__ import annotations

import ctypes

MADV_HUGEPAGE = 14
MADV_COLLAPSE = 25
HUGE = 2 * 1024 * 1024


def _anon_rw_regions() -> list[tuple[int, int]]:
    regions = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            path = parts[5] if len(parts) > 5 else ""
            if parts[1].startswith("rw") and path in ("", "[heap]"):
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                lo, hi = (lo + HUGE - 1) & ~(HUGE - 1), hi & ~(HUGE - 1)  # whole huge pages only
                if hi > lo:
                    regions.append((lo, hi))
    return regions


def collapse_anonymous_memory() -> dict:
    """madvise(MADV_HUGEPAGE + MADV_COLLAPSE) every anonymous rw region; returns a summary."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    done = failed = 0
    for lo, hi in _anon_rw_regions():
        libc.madvise(lo, hi - lo, MADV_HUGEPAGE)
        if libc.madvise(lo, hi - lo, MADV_COLLAPSE) == 0:
            done += hi - lo
        else:
            failed += hi - lo  # e.g. a region with pages the kernel cannot move
    return {"collapsed_bytes": done, "failed_bytes": failed, "thp_bytes": _thp_bytes()}


def _thp_bytes() -> int:
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("AnonHugePages:"):
                return int(line.split()[1]) * 1024
    return 0
