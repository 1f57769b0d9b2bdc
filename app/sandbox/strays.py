"""Kill processes a snippet left behind outside its session.

killpg on the child's session misses a grandchild that called setsid()/setpgid(). The zygote
is a child subreaper (PR_SET_CHILD_SUBREAPER), so such orphans are re-parented to it; after a
run ends, any child of the zygote that is not a spare or a running child is a stray and gets
SIGKILL. Their own children are re-parented in turn, hence the follow-up sweeps.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time

PR_SET_CHILD_SUBREAPER = 36
RESWEEP_AFTER_S = 0.05
RESWEEPS_MAX = 40


def become_subreaper() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_SET_CHILD_SUBREAPER, ctypes.c_ulong(1), 0, 0, 0) == 0


def child_pids() -> set[int] | None:
    """Children of this process (all its threads), or None without CONFIG_PROC_CHILDREN."""
    try:
        tids = os.listdir("/proc/self/task")
    except FileNotFoundError:
        return None
    pids: set[int] = set()
    read_any = False
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                pids.update(int(p) for p in f.read().split())
            read_any = True
        except (FileNotFoundError, ProcessLookupError):
            continue  # that thread exited after listdir (open: ENOENT; read: ESRCH)
    # The calling thread is always there, so nothing read means the kernel lacks the file.
    return pids if read_any else None


class StraySweeper:
    def __init__(self) -> None:
        self.available = child_pids() is not None
        self.next_at: float | None = None
        self._resweeps = 0

    def request(self) -> None:
        if self.available:
            self.next_at = time.monotonic()
            self._resweeps = 0

    def due(self) -> bool:
        return self.next_at is not None and time.monotonic() >= self.next_at

    def sweep(self, tracked: set[int]) -> int:
        """SIGKILL every untracked child; returns how many. Schedules a re-sweep if any."""
        strays = (child_pids() or set()) - tracked
        for pid in strays:
            try:
                os.kill(pid, signal.SIGKILL)  # our child: its pid cannot be reused before we reap
            except ProcessLookupError:
                pass
        self._resweeps += 1
        keep_going = strays and self._resweeps < RESWEEPS_MAX
        self.next_at = time.monotonic() + RESWEEP_AFTER_S if keep_going else None
        return len(strays)
