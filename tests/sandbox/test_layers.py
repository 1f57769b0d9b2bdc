"""The confinement-layer registry: a layer added to it (one class, one line) is accepted by the
limits, probed by the zygote, applied by every child and listed by health, with no other edit."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from app.sandbox import confinement, layers, zygote
from app.sandbox.child import ChildPlan
from app.sandbox.layers import DISABLED, Layer, LayerReport, Stage
from app.sandbox.limits import LAYERS, SandboxLimits, parse_required
from tests.sandbox.conftest import PoolHarness
from tests.sandbox.fake_layer_zygote import MARK, FakeChildLayer, FakeInertLayer

pytestmark = pytest.mark.integration
LANDLOCK_AND_SECCOMP = ("landlock_fs", "seccomp")  # off in-process: no ruleset fd left in pytest


class BrokenChildLayer(Layer[None]):
    name, stage = "fake_broken", Stage.CHILD

    def apply(self, state: None, done: Mapping[str, LayerReport]) -> LayerReport:
        return LayerReport(False, "fake: the kernel said no")


@pytest.fixture
def with_fakes(monkeypatch):
    fakes = (FakeChildLayer(), FakeInertLayer(), BrokenChildLayer())
    monkeypatch.setattr(layers, "REGISTRY", (*layers.REGISTRY, *fakes))


def test_child_layers_apply_in_dependency_order():
    """Landlock and seccomp need no_new_privs first; seccomp last (it is built for the child's pid
    and would deny what the others call)."""
    order = [layer.name for layer in layers.of_stage(Stage.CHILD)]
    assert order == ["no_new_privs", "landlock_fs", "landlock_net", "landlock_scope", "seccomp"]
    assert [layer.name for layer in layers.of_stage(Stage.ZYGOTE_START)] == ["dumpable_off", "netns"]


def test_the_registry_is_the_report_order():
    assert LAYERS == layers.names() == tuple(layer.name for layer in layers.REGISTRY)
    assert len(set(LAYERS)) == len(LAYERS)


def test_a_registered_layer_is_a_known_name(with_fakes):
    assert "fake_child" in parse_required("all")
    assert "fake_inert" not in parse_required("all")  # in_all = False, like netns
    limits = SandboxLimits(require_layers="fake_child", disable_layers="fake_inert")
    assert limits.require_layers == "fake_child"


def test_an_unregistered_name_is_refused():
    with pytest.raises(ValueError, match="unknown confinement layers"):
        SandboxLimits(require_layers="fake_child")


def _plan(limits: SandboxLimits, disabled: tuple[str, ...]) -> ChildPlan:
    return ChildPlan(limits, "as", None, False, confinement.plan_child(disabled))


def test_the_zygote_probes_a_registered_child_layer(with_fakes):
    """The probe child (confined like a spare, forked from here) applies it and reports it."""
    limits = SandboxLimits(require_layers="fake_child")
    confined = zygote._confine_plan(_plan(limits, LANDLOCK_AND_SECCOMP), {})
    assert confined.refuse is None
    assert "fake_child" in confined.plan.expect_layers  # so every spare must apply it too
    assert "fake_child" in confined.report["active"]
    assert confined.report["layers"]["fake_child"]["detail"].startswith("probed in the zygote")
    assert confined.report["fake_fact"] is True  # a layer's own report keys
    assert confined.report["missing"]["fake_broken"] == "fake: the kernel said no"


def test_a_required_registered_layer_that_fails_refuses_the_start(with_fakes):
    limits = SandboxLimits(require_layers="fake_broken")
    confined = zygote._confine_plan(_plan(limits, LANDLOCK_AND_SECCOMP), {})
    assert confined.refuse == "required confinement layers missing: fake_broken: fake: the kernel said no"


def test_a_disabled_registered_layer_is_not_probed_and_says_why(with_fakes):
    plan = _plan(SandboxLimits(), (*LANDLOCK_AND_SECCOMP, "fake_child"))
    assert "fake_child" not in plan.layers.states and plan.layers.facts["fake_fact"] is False
    confined = zygote._confine_plan(plan, {})
    assert confined.report["missing"]["fake_child"] == DISABLED


# ---- a real zygote with the two fake layers -------------------------------------------------


@pytest.fixture(scope="module")
def fake_pool():
    limits = SandboxLimits(exec_timeout_s=5.0, kill_grace_s=0.5, require_layers="all")
    harness = PoolHarness(limits, spares=1, zygote_module="tests.sandbox.fake_layer_zygote")
    yield harness
    harness.close()


def test_health_lists_a_registered_layer(fake_pool):
    report = fake_pool.pool.health()["confinement"]
    assert report["active"][-1] == "fake_child"  # registry order; "all" required it, it started
    assert report["missing"]["fake_inert"] == "fake: never available"
    assert set(report["active"]) | set(report["missing"]) == {*LAYERS, "fake_child", "fake_inert"}
    detail = report["layers"]["fake_child"]["detail"]
    # Applied after no_new_privs and Landlock (its order), before seccomp.
    assert detail.endswith("applied after no_new_privs,landlock_fs,landlock_net,landlock_scope")


def test_every_child_applies_a_registered_layer(fake_pool):
    code = f"import os\nprint(os.environ.get('{MARK}') == str(os.getpid()))"
    for _ in range(2):  # the second run is another spare
        res = fake_pool.result(code)
        assert res["stdout"]["text"] == "True\n", res
