"""Per-run limits of the sandbox, as a plain frozen dataclass: the one set of their defaults.

The sandbox must import on a GPU box that only has torch and numpy, so this is NOT a pydantic
model; the web layer's settings take their defaults from it (app.settings) and construct it.
Every field name carries its unit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

from app.sandbox import layers

MiB = 1024 * 1024


class TimeLimit(BaseException):
    """Raised inside the snippet by the soft wall-clock timer (app.sandbox.runner). A
    BaseException: `except Exception` in the snippet does not swallow it."""


# How the memory budget is enforced. "as" caps the address space (RLIMIT_AS): the spec'd limit,
# but CUDA reserves host virtual address space of about twice the GPU memory when it creates a
# context, so a CUDA snippet would fail under it. "data" caps private writable memory
# (RLIMIT_DATA), which those PROT_NONE reservations do not count against. "auto" picks "data"
# when this torch build has CUDA and a GPU device node exists, else "as".
MemoryRlimitMode = Literal["auto", "as", "data"]
MEMORY_RLIMIT_MODES: tuple[str, ...] = get_args(MemoryRlimitMode)

# Confinement layer names, from the registry (app.sandbox.layers), in report order. Snapshots
# for readers; the limits themselves check names against the registry at call time.
LAYERS = layers.names()
CHILD_LAYERS = layers.names(layers.Stage.CHILD)
ZYGOTE_LAYERS = tuple(n for n in LAYERS if n not in CHILD_LAYERS)
# "all" in require_layers: every layer but netns, which a default Docker profile cannot grant.
ALL_REQUIRED = layers.all_required()
# Layers an operator may switch off; "landlock_fs" switches off all of Landlock.
OPTIONAL_LAYERS = layers.optional()


def parse_required(spec: str) -> tuple[str, ...]:
    """'' -> (); 'all' -> layers.all_required(); 'seccomp,landlock_fs' -> those. ValueError on a typo."""
    wanted = [n.strip() for n in spec.split(",") if n.strip()]
    if "all" in wanted:
        return tuple(dict.fromkeys([*layers.all_required(), *(n for n in wanted if n != "all")]))
    known = layers.names()
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ValueError(f"unknown confinement layers {unknown}; known: {', '.join(known)} or 'all'")
    return tuple(wanted)


def parse_disabled(spec: str) -> tuple[str, ...]:
    """Layers an operator may switch off (e.g. a GPU driver that Landlock breaks); tests use it
    to check that each remaining layer holds on its own. ValueError on a mandatory one."""
    wanted = tuple(n.strip() for n in spec.split(",") if n.strip())
    allowed = layers.optional()
    wrong = [n for n in wanted if n not in allowed]
    if wrong:
        raise ValueError(f"cannot disable {wrong}; optional layers: {', '.join(allowed)}")
    return wanted


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
    memory_rlimit: MemoryRlimitMode = "auto"  # see MEMORY_RLIMIT_MODES
    # Comma-separated confinement layers (or "all") without which the zygote refuses to start.
    require_layers: str = ""
    disable_layers: str = ""  # comma-separated OPTIONAL_LAYERS not to apply at all

    def __post_init__(self) -> None:
        if self.memory_rlimit not in MEMORY_RLIMIT_MODES:
            raise ValueError(f"memory_rlimit must be one of {MEMORY_RLIMIT_MODES}")
        if self.exec_timeout_s <= 0 or self.kill_grace_s <= 0:
            raise ValueError("exec_timeout_s and kill_grace_s must be > 0")
        parse_required(self.require_layers)
        parse_disabled(self.disable_layers)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SandboxLimits:
        """Build from a dict, ignoring unknown keys (a newer peer may send more fields)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def replace(self, **changes: Any) -> SandboxLimits:
        return dataclasses.replace(self, **changes)
