"""The registry of kernel confinement layers: one class per layer, REGISTRY lists them.

A layer is its name (used in reports, TP_REQUIRE_LAYERS and TP_DISABLE_LAYERS), the stage it
applies at, how the zygote probes what this host offers (probe(), once), and how it is applied
(apply(), with probe()'s outcome). Adding a layer is one Layer subclass and one line in REGISTRY;
everything else iterates the registry: the names accepted in the limits (app.sandbox.limits), the
zygote's own layers (app.sandbox.zygote), every child's (app.sandbox.child), the probe child that
learns what the kernel really accepts (app.sandbox.probe) and the report (app.sandbox.confinement).

Stages, in the order they happen:
  ZYGOTE_START  in the zygote before torch is imported, before anything a child could inherit
  ZYGOTE_FORKS  in the zygote after its warm-up and uid probe, before the child layers' probe
  CHILD         in every child after its session, rlimits and uid drop, before it takes a job

The web process imports this module for the names, so heavy imports stay inside the methods.
"""

from __future__ import annotations

import ctypes
import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from app.sandbox import landlock

DISABLED = "disabled by disable_layers"
PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, CLONE_NEWNET = 4, 38, 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)
State = TypeVar("State")


class Stage(enum.Enum):
    ZYGOTE_START = "zygote_start"
    ZYGOTE_FORKS = "zygote_forks"
    CHILD = "child"


@dataclass(frozen=True)
class LayerReport:
    """One layer's outcome; its dict form is the per-layer entry of the health report."""

    active: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"active": self.active, "detail": self.detail}


class Layer(Generic[State]):
    """Subclass, set the class attributes, implement apply() (and probe() if the zygote must
    decide something first), and add an instance to REGISTRY."""

    name: ClassVar[str]
    stage: ClassVar[Stage]
    optional: ClassVar[bool] = True  # TP_DISABLE_LAYERS may name it
    in_all: ClassVar[bool] = True  # TP_REQUIRE_LAYERS=all requires it
    order: ClassVar[int] = 50  # application order within its stage; REGISTRY's order is the report's

    def probe(self, disabled: tuple[str, ...]) -> State | None:
        """In the zygote, once: what this host offers; apply() gets the outcome (in each child)."""
        return None

    def apply(self, state: State, done: Mapping[str, LayerReport]) -> LayerReport:
        """Apply on the calling process. `done`: the reports of the layers applied before it."""
        raise NotImplementedError

    def keep_fds(self, state: State) -> tuple[int, ...]:
        """File descriptors a child must keep open until apply() (they are inherited)."""
        return ()

    def facts(self, state: State | None) -> dict[str, Any]:
        """Extra top-level keys of the confinement report; child layers only (their state is
        None when disabled)."""
        return {}


def _errno_text(what: str) -> str:
    return f"{what} failed: {os.strerror(ctypes.get_errno())}"


def _prctl(option: int, arg: int) -> bool:
    return _libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0) == 0


class DumpableOff(Layer[None]):
    """PR_SET_DUMPABLE 0 on the zygote: children cannot read /proc/<zygote>/environ, maps or mem,
    nor ptrace it, even when they share its uid."""

    name, stage, optional = "dumpable_off", Stage.ZYGOTE_START, False

    def apply(self, state: None, done: Mapping[str, LayerReport]) -> LayerReport:
        ok = _prctl(PR_SET_DUMPABLE, 0)
        return LayerReport(ok, "zygote not dumpable" if ok else _errno_text("prctl"))


class Subreaper(Layer[None]):
    """PR_SET_CHILD_SUBREAPER: orphans of a run come back to the zygote, which kills them
    (app.sandbox.strays)."""

    name, stage, optional = "subreaper", Stage.ZYGOTE_FORKS, False

    def apply(self, state: None, done: Mapping[str, LayerReport]) -> LayerReport:
        from app.sandbox import strays

        ok = strays.become_subreaper()
        return LayerReport(
            ok, "orphans of a run are re-parented to the zygote and killed" if ok else "prctl failed"
        )


class NetNs(Layer[None]):
    """A private, empty network namespace. Needs CAP_SYS_ADMIN, which a default Docker profile
    does not grant: so "all" does not require it."""

    name, stage, in_all = "netns", Stage.ZYGOTE_START, False

    def apply(self, state: None, done: Mapping[str, LayerReport]) -> LayerReport:
        ok = _libc.unshare(CLONE_NEWNET) == 0
        return LayerReport(
            ok, "private network namespace, no interfaces up" if ok else _errno_text("unshare")
        )


class NoNewPrivs(Layer[None]):
    """PR_SET_NO_NEW_PRIVS: setuid binaries cannot regain root; lets unprivileged Landlock and
    seccomp load. Everything after it depends on it, so a failure ends the child (raises)."""

    name, stage, optional, order = "no_new_privs", Stage.CHILD, False, 0

    def apply(self, state: None, done: Mapping[str, LayerReport]) -> LayerReport:
        if not _prctl(PR_SET_NO_NEW_PRIVS, 1):
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        return LayerReport(True, "set")


@dataclass(frozen=True)
class SeccompState:
    compiled: dict | None  # seccomp_filter.compile()'s program, or None when unavailable
    why: str


class Seccomp(Layer[SeccompState]):
    """The deny-list filter of app.sandbox.seccomp_filter, compiled once in the zygote. Last: it
    is built for the child's pid, and it would deny what the layers before it call."""

    name, stage, order = "seccomp", Stage.CHILD, 90

    def probe(self, disabled: tuple[str, ...]) -> SeccompState:
        from app.sandbox import seccomp_filter  # imports pyseccomp, which runs ldconfig

        ok, why = seccomp_filter.available()
        if not ok:
            return SeccompState(None, why)
        try:
            return SeccompState(seccomp_filter.compile(), why)
        except OSError as exc:
            return SeccompState(None, f"could not compile the filter: {exc}")

    def apply(self, state: SeccompState, done: Mapping[str, LayerReport]) -> LayerReport:
        from app.sandbox import seccomp_filter

        if state.compiled is None:
            return LayerReport(False, state.why)
        try:
            return LayerReport(True, seccomp_filter.install(state.compiled, os.getpid()))
        except OSError as exc:
            return LayerReport(False, f"seccomp_load failed: {exc}")


@dataclass(frozen=True)
class RulesetState:
    abi: int
    ruleset_fd: int | None  # built in the zygote; every child restricts itself with it
    why: str


class LandlockFs(Layer[RulesetState]):
    """Read-only beneath the paths of confinement.read_paths(), no writes anywhere. Disabling it
    switches off all of Landlock: the net and scope rules live in the same ruleset."""

    name, stage, order = "landlock_fs", Stage.CHILD, 10

    def probe(self, disabled: tuple[str, ...]) -> RulesetState:
        from app.sandbox.confinement import read_paths, rw_files

        abi = landlock.abi_version()
        if not abi:
            return RulesetState(0, None, "Landlock not supported or disabled by this kernel")
        try:
            fd, rules = landlock.create_ruleset(abi, read_paths(), rw_files(), skip=disabled)
        except OSError as exc:
            return RulesetState(abi, None, f"could not build the ruleset: {exc}")
        return RulesetState(abi, fd, f"ABI {abi}: read-only beneath {rules} paths, no writes")

    def apply(self, state: RulesetState, done: Mapping[str, LayerReport]) -> LayerReport:
        if state.ruleset_fd is None:
            return LayerReport(False, state.why)
        try:
            landlock.restrict_self(state.ruleset_fd)
        except OSError as exc:
            return LayerReport(False, f"landlock_restrict_self failed: {exc}")
        return LayerReport(True, state.why)

    def keep_fds(self, state: RulesetState) -> tuple[int, ...]:
        return () if state.ruleset_fd is None else (state.ruleset_fd,)

    def facts(self, state: RulesetState | None) -> dict[str, Any]:
        return {"landlock_abi": state.abi if state else 0}


@dataclass(frozen=True)
class FeatureState:
    abi: int  # 0: no Landlock here, or all of it disabled
    handled: bool  # the ruleset handles this feature at this ABI
    fs_disabled: bool


class _LandlockFeature(Layer[FeatureState]):
    """A part of LandlockFs's ruleset: active when that ruleset is and its ABI handles it."""

    feature: ClassVar[str]  # its key in landlock.describe()
    active_detail: ClassVar[str]
    needs: ClassVar[str]

    def probe(self, disabled: tuple[str, ...]) -> FeatureState:
        fs_off = "landlock_fs" in disabled
        abi = 0 if fs_off else landlock.abi_version()
        return FeatureState(abi, landlock.describe(abi, skip=disabled)[self.feature], fs_off)

    def apply(self, state: FeatureState, done: Mapping[str, LayerReport]) -> LayerReport:
        fs = done.get("landlock_fs")
        if state.handled and fs is not None and fs.active:
            return LayerReport(True, self.active_detail)
        if state.fs_disabled:
            return LayerReport(False, DISABLED)
        return LayerReport(False, self.needs if state.abi else "Landlock unavailable")


class LandlockNet(_LandlockFeature):
    name, stage, order = "landlock_net", Stage.CHILD, 11
    feature, active_detail = "net", "TCP bind/connect denied"
    needs = "needs Landlock ABI 4 (Linux 6.7)"


class LandlockScope(_LandlockFeature):
    name, stage, order = "landlock_scope", Stage.CHILD, 12
    feature, active_detail = "scope", "signals and abstract sockets scoped"
    needs = "needs Landlock ABI 6 (Linux 6.12)"


# Report order. One line per layer; app.sandbox.confinement applies them stage by stage.
REGISTRY: tuple[Layer[Any], ...] = (
    DumpableOff(),
    Subreaper(),
    NetNs(),
    NoNewPrivs(),
    Seccomp(),
    LandlockFs(),
    LandlockNet(),
    LandlockScope(),
)


def registry() -> tuple[Layer[Any], ...]:
    """Read at call time (not imported by value), so a test can register a layer of its own."""
    return REGISTRY


def names(stage: Stage | None = None) -> tuple[str, ...]:
    return tuple(layer.name for layer in registry() if stage is None or layer.stage is stage)


def of_stage(stage: Stage) -> list[Layer[Any]]:
    """The layers of one stage in application order (REGISTRY's order among equal ranks)."""
    return sorted((layer for layer in registry() if layer.stage is stage), key=lambda layer: layer.order)


def all_required() -> tuple[str, ...]:
    return tuple(layer.name for layer in registry() if layer.in_all)


def optional() -> tuple[str, ...]:
    return tuple(layer.name for layer in registry() if layer.optional)
