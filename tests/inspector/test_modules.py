"""Module and optimizer entries (app/inspector/modules.py)."""

from __future__ import annotations

import pytest

from tests.web.conftest import make_client

from .helpers import by_name, snap

NET = """
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear1 = nn.Linear(4, 3)
            self.bn = nn.BatchNorm1d(3)
            self.register_buffer('scratch', torch.zeros(1), persistent=False)
            self.w = nn.Parameter(torch.ones(3))
            self.v = torch.randn(3)
            self.linear2 = nn.Linear(3, 1)

        def forward(self, x):
            return self.linear2(self.bn(self.linear1(x)) * self.w)

    torch.manual_seed(0)
    model = Net()
"""


def test_parameters_in_registration_order_with_tensor_names():
    m = by_name(snap(NET)["modules"], "model")
    assert [p["name"] for p in m["parameters"]] == [
        "w",
        "linear1.weight",
        "linear1.bias",
        "bn.weight",
        "bn.bias",
        "linear2.weight",
        "linear2.bias",
    ]
    w1 = by_name(m["parameters"], "linear1.weight")
    assert w1 == {
        "name": "linear1.weight",
        "shape": [3, 4],
        "requires_grad": True,
        "numel": 12,
        "tensor": "model.linear1.weight",
    }
    assert m["param_count"] == 3 + 12 + 3 + 3 + 3 + 3 + 1


def test_buffers_unregistered_state_dict_children():
    m = by_name(snap(NET)["modules"], "model")
    assert [b["name"] for b in m["buffers"]] == [
        "scratch",
        "bn.running_mean",
        "bn.running_var",
        "bn.num_batches_tracked",
    ]
    assert m["unregistered"] == [{"name": "v", "shape": [3], "tensor": "model.v"}]
    assert "scratch" not in m["state_dict_keys"]  # persistent=False: only the real keys
    assert "bn.running_mean" in m["state_dict_keys"] and "w" in m["state_dict_keys"]
    assert m["children"] == ["linear1", "bn", "linear2"]
    assert m["class"] == "Net" and m["kind"] == "module" and m["training"] is True


def test_submodules_get_entries_with_qualname():
    s = snap(NET + "    model.eval()\n")
    lin = by_name(s["modules"], "model.linear1")
    assert lin["qualname"] == "torch.nn.modules.linear.Linear" and lin["class"] == "Linear"
    assert [p["tensor"] for p in lin["parameters"]] == ["model.linear1.weight", "model.linear1.bias"]
    assert lin["training"] is False
    assert [m["name"] for m in s["modules"]] == ["model", "model.linear1", "model.bn", "model.linear2"]


def test_module_cap_truncates():
    from app.inspector import InspectLimits

    s = snap(NET, InspectLimits(modules_max=2))
    assert len(s["modules"]) == 2 and s["truncated"] is True


def test_optimizer_state_keyed_by_parameter_name_after_step():
    s = snap("""
        torch.manual_seed(0)
        model = nn.Linear(2, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        model(torch.ones(4, 2)).sum().backward()
        opt.step()
    """)
    opt = by_name(s["modules"], "opt")
    assert opt["kind"] == "optimizer" and opt["class"] == "SGD"
    group = opt["param_groups"][0]
    assert group["params"] == ["model.weight", "model.bias"]
    assert group["hyperparameters"]["lr"] == 0.1 and group["hyperparameters"]["momentum"] == 0.9
    assert [st["param"] for st in opt["state"]] == ["model.weight", "model.bias"]
    buf = opt["state"][0]["entries"]["momentum_buffer"]
    assert buf["shape"] == [1, 2] and buf["tensor"] == "opt.state[model.weight]['momentum_buffer']"
    assert by_name(s["tensors"], buf["tensor"])["shape"] == [1, 2]


def test_adam_step_is_a_number_and_betas_a_list():
    s = snap("""
        model = nn.Linear(2, 1)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        model(torch.ones(1, 2)).sum().backward()
        opt.step()
    """)
    opt = by_name(s["modules"], "opt")
    hp = opt["param_groups"][0]["hyperparameters"]
    assert hp["betas"] == [0.9, 0.999] and hp["lr"] == 0.001
    entries = opt["state"][0]["entries"]
    assert entries["step"] == 1.0
    assert set(entries) == {"step", "exp_avg", "exp_avg_sq"}


def test_optimizer_with_no_state_yet():
    s = snap("model = nn.Linear(2, 1)\nopt = torch.optim.SGD(model.parameters(), lr=0.5)\n")
    opt = by_name(s["modules"], "opt")
    assert opt["state"] == [] and opt["param_groups"][0]["hyperparameters"]["lr"] == 0.5


def test_lazy_module_uninitialized_parameters_do_not_drop_the_module():
    # regression: UninitializedParameter raises on .shape/.numel, which lost the module entry
    s = snap("lazy = nn.LazyLinear(3)\n")
    assert s["warnings"] == []
    m = by_name(s["modules"], "lazy")
    assert [(p["name"], p["shape"], p["numel"]) for p in m["parameters"]] == [
        ("weight", [], 0),
        ("bias", [], 0),
    ]
    w = by_name(s["tensors"], "lazy.weight")
    assert w["flags"] == ["uninitialized"] and w["storage"] is None and w["is_parameter"]
    s2 = snap("lazy = nn.LazyLinear(3)\nout = lazy(torch.ones(1, 2))\n")
    assert by_name(s2["modules"], "lazy")["parameters"][0]["shape"] == [3, 2]


POLYNOMIAL = """
    import torch
    from torch import nn
    model = nn.Sequential(nn.Linear(3, 1), nn.Flatten(0, 1))
    linear_layer = model[0]
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    optimizer = opt
"""


def test_second_names_of_modules_and_optimizers_are_their_aliases():
    s = snap(POLYNOMIAL)
    assert by_name(s["modules"], "model.0")["aliases"] == ["linear_layer"]
    assert by_name(s["modules"], "model")["aliases"] == []
    assert by_name(s["modules"], "opt")["aliases"] == ["optimizer"]
    assert by_name(s["tensors"], "model.0.bias")["aliases"] == ["linear_layer.bias"]
    # The entry's own lists keep the first name: one name per tensor across the panels.
    assert [p["tensor"] for p in by_name(s["modules"], "model.0")["parameters"]] == [
        "model.0.weight",
        "model.0.bias",
    ]


def _polynomial_code() -> str:
    return "\n".join(line.strip() for line in POLYNOMIAL.strip().splitlines())


@pytest.mark.integration
def test_module_aliases_reach_the_api_and_the_modules_panel():
    """Through a real worker: the schema lets the field through, and the page lists it."""
    with make_client() as client:
        body = client.post("/api/run", json={"code": _polynomial_code()}).json()
        page = client.post("/fragments/run", data={"code": _polynomial_code()}).text
    assert body["ok"] is True, body["error"]
    assert by_name(body["modules"], "model.0")["aliases"] == ["linear_layer"]
    assert by_name(body["modules"], "opt")["aliases"] == ["optimizer"]
    assert by_name(body["tensors"], "model.0.bias")["aliases"] == ["linear_layer.bias"]
    modules_card = page[page.index('id="modules-card"') :]
    assert '<code>model.0</code> <span class="aliases">= linear_layer</span>' in modules_card


@pytest.mark.integration
def test_a_second_name_that_renames_no_tensor_reaches_a_traced_run():
    """The page asks for traced runs with states: its modules panel is that run's last step.
    Regression: the module and optimizer prints left the aliases out, so `optimizer = opt` (which
    renames no tensor) kept opt's cached entry without its new name."""
    with make_client() as client:
        body = client.post("/api/run", json={"code": _polynomial_code(), "trace": True, "step_states": True})
    assert by_name(body.json()["modules"], "opt")["aliases"] == ["optimizer"]
