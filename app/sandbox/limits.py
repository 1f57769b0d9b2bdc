"""Per-run limits of the sandbox, as a plain frozen dataclass.

The sandbox must import on a GPU box that only has torch and numpy, so this is NOT a pydantic
model; the web layer's settings construct it. Every field name carries its unit.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

MiB = 1024 * 1024

# How the memory budget is enforced. "as" caps the address space (RLIMIT_AS): the spec'd limit,
# but CUDA reserves host virtual address space of about twice the GPU memory when it creates a
# context, so a CUDA snippet would fail under it. "data" caps private writable memory
# (RLIMIT_DATA), which those PROT_NONE reservations do not count against. "auto" picks "data"
# when this torch build has CUDA and a GPU device node exists, else "as".
MEMORY_RLIMIT_MODES = ("auto", "as", "data")


@dataclass(frozen=True)
class SandboxLimits:
    exec_timeout_s: float = 5.0  # soft limit: TimeLimit raised inside the snippet
    kill_grace_s: float = 1.0  # hard kill of the run's session at exec_timeout_s + kill_grace_s
    cpu_time_s: int = 10  # RLIMIT_CPU of the child
    memory_budget_mb: int = 1024  # RLIMIT_AS (or DATA) = zygote's current size + this budget
    file_size_max_bytes: int = 1 * MiB  # RLIMIT_FSIZE
    open_files_max: int = 64  # RLIMIT_NOFILE
    processes_max: int = 64  # RLIMIT_NPROC (counts per uid: all sandbox children share it)
    output_max_bytes: int = 64 * 1024  # kept of each of stdout/stderr; the rest is dropped
    output_abort_bytes: int = 8 * MiB  # writing past this ends the run with OutputLimit
    result_max_bytes: int = 16 * MiB  # a bigger result frame ends the run (zygote stops reading)
    sandbox_uid: int = 64123  # uid/gid children drop to when the server runs as root
    sandbox_gid: int = 64123
    require_uid_drop: bool = False  # refuse to start when the uid drop is impossible
    memory_rlimit: str = "auto"  # see MEMORY_RLIMIT_MODES

    def __post_init__(self) -> None:
        if self.memory_rlimit not in MEMORY_RLIMIT_MODES:
            raise ValueError(f"memory_rlimit must be one of {MEMORY_RLIMIT_MODES}")
        if self.exec_timeout_s <= 0 or self.kill_grace_s <= 0:
            raise ValueError("exec_timeout_s and kill_grace_s must be > 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SandboxLimits":
        """Build from a dict, ignoring unknown keys (a newer peer may send more fields)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def replace(self, **changes: Any) -> "SandboxLimits":
        return dataclasses.replace(self, **changes)
