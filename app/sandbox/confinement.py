"""Applying the confinement layers of app.sandbox.layers, stage by stage, and their report.

The zygote applies its own stages itself (apply_zygote_stage), decides the child layers once
(plan_child: each layer's probe()), confines a probe child exactly like a spare to learn what the
kernel really accepts (app.sandbox.probe), and then every child applies the plan
(apply_child_layers); a child that fails to apply a layer the probe had fails closed (it exits
before taking a job). This module also holds the Landlock layer's paths: what a child may read.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.sandbox import layers
from app.sandbox.layers import DISABLED, LayerReport, Stage

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


def apply_zygote_stage(stage: Stage, disabled: tuple[str, ...]) -> dict[str, LayerReport]:
    """Probe and apply one of the zygote's own stages on the calling process (the zygote)."""
    done: dict[str, LayerReport] = {}
    for layer in layers.of_stage(stage):
        if layer.name in disabled:
            done[layer.name] = LayerReport(False, DISABLED)
        else:
            done[layer.name] = layer.apply(layer.probe(disabled), done)
    return done


@dataclass(frozen=True)
class ChildLayers:
    """The zygote's decisions for the child layers (each layer's probe()), applied by every child."""

    states: Mapping[str, Any]  # by layer name; a disabled layer has none
    disabled: tuple[str, ...] = ()
    facts: Mapping[str, Any] = field(default_factory=dict)  # the layers' extra report keys

    def keep_fds(self) -> tuple[int, ...]:
        return tuple(fd for layer in _probed(self) for fd in layer.keep_fds(self.states[layer.name]))


def _probed(plan: ChildLayers) -> list[layers.Layer[Any]]:
    return [layer for layer in layers.of_stage(Stage.CHILD) if layer.name in plan.states]


def plan_child(disabled: tuple[str, ...]) -> ChildLayers:
    """Decided once in the zygote, before the first fork; see apply_child_layers."""
    states: dict[str, Any] = {}
    facts: dict[str, Any] = {}
    for layer in layers.of_stage(Stage.CHILD):
        state = None if layer.name in disabled else layer.probe(disabled)
        if layer.name not in disabled:
            states[layer.name] = state
        facts.update(layer.facts(state))
    return ChildLayers(states, disabled, facts)


def apply_child_layers(plan: ChildLayers) -> dict[str, LayerReport]:
    """Every child layer, in order, on the calling (single-threaded) child. A layer that cannot
    apply reports why rather than raising (but no_new_privs raises): the caller decides."""
    done: dict[str, LayerReport] = {}
    for layer in layers.of_stage(Stage.CHILD):
        if layer.name in plan.states:
            done[layer.name] = layer.apply(plan.states[layer.name], done)
        else:
            done[layer.name] = LayerReport(False, DISABLED)
    return done


def summary(reports: Mapping[str, LayerReport], facts: Mapping[str, Any]) -> dict[str, Any]:
    """The shape reported by the ready frame, Pool.health() and GET /api/health."""
    order = layers.names()
    return {
        "active": [n for n in order if n in reports and reports[n].active],
        "missing": {n: reports[n].detail for n in order if n in reports and not reports[n].active},
        **facts,
        "layers": {n: reports[n].to_dict() for n in order if n in reports},
    }


def missing_required(reports: Mapping[str, LayerReport], required: tuple[str, ...]) -> list[str]:
    return [n for n in required if n not in reports or not reports[n].active]
