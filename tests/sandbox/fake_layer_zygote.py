"""A zygote with two confinement layers of a test's own, added the way a real one is: a class
each and one line appending them to the registry (tests/sandbox/test_layers.py starts it with
`Pool(zygote_module="tests.sandbox.fake_layer_zygote")`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from app.sandbox import layers, zygote
from app.sandbox.layers import Layer, LayerReport, Stage

MARK = "TP_FAKE_LAYER_PID"


class FakeChildLayer(Layer[str]):
    """Applied in every child: it leaves its pid in the environment, for the snippet to read,
    and names the layers applied before it (its order puts it between Landlock and seccomp)."""

    name, stage = "fake_child", Stage.CHILD

    def probe(self, disabled: tuple[str, ...]) -> str:
        return f"probed in the zygote {os.getpid()}"

    def apply(self, state: str, done: Mapping[str, LayerReport]) -> LayerReport:
        os.environ[MARK] = str(os.getpid())
        return LayerReport(True, f"{state}; applied after {','.join(done)}")

    def facts(self, state: str | None) -> dict:
        return {"fake_fact": state is not None}


class FakeInertLayer(Layer[None]):
    """A zygote layer this host never has: reported missing, with its reason."""

    name, stage, in_all = "fake_inert", Stage.ZYGOTE_FORKS, False

    def apply(self, state: None, done: Mapping[str, LayerReport]) -> LayerReport:
        return LayerReport(False, "fake: never available")


if __name__ == "__main__":
    layers.REGISTRY = (*layers.REGISTRY, FakeChildLayer(), FakeInertLayer())
    sys.exit(zygote.main())
