"""Naming and reachability (app/inspector/walk.py)."""

from __future__ import annotations

import collections

import numpy as np
import torch

from app.inspector import InspectLimits
from app.inspector.walk import Walker, safe_repr, skip_top_level, walk

from .helpers import by_name, run_snippet, snap


def names(found_list) -> list[str]:
    return [f.name for f in found_list]


def test_aliases_first_name_wins():
    s = snap("t = torch.ones(2)\na = b = t\n")
    assert [t["name"] for t in s["tensors"]] == ["t"]
    assert s["tensors"][0]["aliases"] == ["a", "b"]


def test_top_level_name_beats_container_path():
    # breadth-first: the shorter top-level name wins even if the dict came first
    s = snap("d = {'k': torch.ones(1)}\nt = d['k']\n")
    entry = by_name(s["tensors"], "t")
    assert entry["aliases"] == ["d['k']"]


def test_dict_keys_are_repr_and_nested_lists_indexed():
    s = snap("d = {'a': [torch.ones(1), (torch.zeros(1),)], 3: torch.ones(2), (1, 2): torch.ones(3)}\n")
    assert {t["name"] for t in s["tensors"]} == {"d['a'][0]", "d['a'][1][0]", "d[3]", "d[(1, 2)]"}


def test_namedtuple_fields_and_torch_return_types():
    s = snap("""
        import collections
        P = collections.namedtuple('P', 'mean std')
        p = P(torch.zeros(2), torch.ones(2))
        r = torch.max(torch.arange(6.).reshape(2, 3), 1)
    """)
    got = {t["name"] for t in s["tensors"]}
    assert {"p.mean", "p.std", "r.values", "r.indices"} <= got


def test_skips_dunders_modules_functions_classes():
    ns, _ = run_snippet("""
        def f(): return torch.ones(1)
        class C: pass
        _private = torch.ones(1)
    """)
    ns["__hidden"] = torch.ones(1)
    result = walk(ns, InspectLimits())
    assert names(result.tensors) == ["_private"]  # single underscore is user data
    assert skip_top_level("torch", torch) and skip_top_level("np", np)
    assert skip_top_level("f", ns["f"]) and skip_top_level("C", ns["C"])
    assert skip_top_level("len", len)
    assert not skip_top_level("x", torch.ones(1))


def test_grad_is_named_after_its_tensor():
    s = snap("""
        x = torch.ones(2, requires_grad=True)
        y = x * 3
        y.sum().backward()
    """)
    x = by_name(s["tensors"], "x")
    assert x["grad"] == "x.grad"
    assert by_name(s["tensors"], "x.grad")["preview"]["values"] == [3.0, 3.0]
    assert by_name(s["tensors"], "y")["grad"] is None


def test_nonleaf_grad_read_does_not_warn_and_retain_grad_is_followed():
    # regression: reading ._grad of a non-leaf emitted torch's UserWarning (an error
    # under pytest's filterwarnings=error); walk() itself does not silence warnings
    ns, _ = run_snippet("""
        x = torch.ones(2, requires_grad=True)
        y = x * 3
        z = x * 4
        z.retain_grad()
        (y + z).sum().backward()
    """)
    result = walk(ns, InspectLimits())
    assert result.warnings == []
    assert [f.name for f in result.tensors] == ["x", "y", "z", "x.grad", "z.grad"]


def test_cycles_are_walked_once():
    s = snap("a = [torch.ones(1)]\na.append(a)\nd = {}\nd['self'] = d\n")
    assert [t["name"] for t in s["tensors"]] == ["a[0]"]
    assert s["truncated"] is False


def test_depth_cap_sets_truncated():
    code = "t = torch.ones(1)\nv = [[[[t]]]]\nw = [[[[torch.zeros(1)]]]]\n"
    s = snap(code, InspectLimits(depth_max=2))
    assert s["truncated"] is True
    assert [t["name"] for t in s["tensors"]] == ["t"]
    s_full = snap(code, InspectLimits(depth_max=6))
    assert s_full["truncated"] is False
    assert by_name(s_full["tensors"], "w[0][0][0][0]")


def test_tensor_and_container_caps_set_truncated():
    s = snap("ts = [torch.ones(1) for _ in range(5)]\n", InspectLimits(tensors_max=3))
    assert len(s["tensors"]) == 3 and s["truncated"] is True
    s = snap("ts = [torch.ones(1) for _ in range(5)]\n", InspectLimits(container_items_max=2))
    assert [t["name"] for t in s["tensors"]] == ["ts[0]", "ts[1]"] and s["truncated"] is True
    s = snap("arrs = [np.ones(1) for _ in range(4)]\n", InspectLimits(arrays_max=1))
    assert len(s["arrays"]) == 1 and s["truncated"] is True


def test_visits_cap_stops_huge_structures():
    s = snap(
        "big = [[i for i in range(100)] for _ in range(100)]\nt = torch.ones(1)\n",
        InspectLimits(visits_max=50),
    )
    assert s["truncated"] is True


def test_module_names_and_unregistered_attrs():
    s = snap("""
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.linear1 = nn.Linear(2, 3)
                self.register_buffer('running', torch.zeros(3))
                self.cache = [torch.ones(1)]
                self.v = torch.ones(4)
        model = Net()
    """)
    # breadth-first: the list's item is one level deeper than the direct attributes
    assert [t["name"] for t in s["tensors"]] == [
        "model.linear1.weight",
        "model.linear1.bias",
        "model.running",
        "model.v",
        "model.cache[0]",
    ]
    assert [m["name"] for m in s["modules"]] == ["model", "model.linear1"]


def test_tied_parameters_are_aliases():
    s = snap("""
        a = nn.Linear(2, 2, bias=False)
        b = nn.Linear(2, 2, bias=False)
        b.weight = a.weight
        m = nn.Sequential(a, b)
    """)
    w = by_name(s["tensors"], "a.weight")
    assert "b.weight" in w["aliases"] and "m.0.weight" in w["aliases"]


def test_optimizer_params_not_named_elsewhere_get_param_group_names():
    s = snap("""
        w = torch.ones(2, requires_grad=True)
        opt = torch.optim.SGD([torch.zeros(2, requires_grad=True), w], lr=0.1)
    """)
    assert by_name(s["tensors"], "opt.param_groups[0]['params'][0]")
    opt = by_name(s["modules"], "opt")
    assert opt["param_groups"][0]["params"] == ["opt.param_groups[0]['params'][0]", "w"]


def test_walk_keeps_references_alive():
    # ids/addresses are reused as soon as an object dies; the walk must hold them
    result = walk({"pair": (torch.ones(1), [torch.zeros(1)])}, InspectLimits())
    assert all(f.obj is not None for f in result.tensors)
    assert any(isinstance(o, list) for o in result.keep)


def test_safe_repr_caps_length_and_survives_broken_repr():
    class Bad:
        def __repr__(self):
            raise ValueError("nope")

    assert safe_repr(Bad()) == "<Bad>"
    assert len(safe_repr("x" * 500)) == 60
    assert "\n" not in safe_repr(torch.zeros(2, 2))  # tensor dict keys: one-line names
    ordered = collections.OrderedDict(a=1)
    assert safe_repr(ordered).startswith("OrderedDict")


def test_public_attributes_of_plain_objects_are_walked():
    """A user's Dataset keeps its tensors in self.x: they were invisible before (the walk only
    went into containers and modules)."""
    s = snap("""
        import types
        class Points(torch.utils.data.Dataset):
            def __init__(self):
                self.x = torch.zeros(4, 2)
                self._cache = torch.ones(1)      # private: an implementation detail
                self.me = self                   # a cycle through an attribute
        pts = Points()
        ns = types.SimpleNamespace(w=torch.ones(2), parts=[np.zeros(2)])
        normal = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    """)
    assert [t["name"] for t in s["tensors"]] == ["pts.x", "ns.w", "normal.loc", "normal.scale"]
    assert [a["name"] for a in s["arrays"]] == ["ns.parts[0]"]
    assert s["truncated"] is False and s["warnings"] == []


def test_a_dataloader_batch_is_new_memory_not_a_view_of_the_dataset():
    """The collate lesson: default_collate stacks samples into a fresh tensor."""
    s = snap("""
        from torch.utils.data import DataLoader, TensorDataset
        ds = TensorDataset(torch.arange(10.).reshape(5, 2), torch.arange(5))
        loader = DataLoader(ds, batch_size=2)
        xb, yb = next(iter(loader))
    """)
    data, xb = by_name(s["tensors"], "ds.tensors[0]"), by_name(s["tensors"], "xb")
    assert data["storage"] != xb["storage"]
    assert xb["shape"] == [2, 2] and by_name(s["tensors"], "ds.tensors[1]")["shape"] == [5]


def test_attribute_walk_bypasses_getattribute_and_skips_functions_and_slots():
    """The instance dict is read past the class's __getattribute__ (only isinstance's
    __class__ lookups reach it), and a function's or class's own __dict__ is not data."""
    ns, _ = run_snippet("""
        calls = []
        class Sneaky:
            def __init__(self):
                self.t = torch.ones(1)
            def __getattribute__(self, name):
                calls.append(name)
                return object.__getattribute__(self, name)
            def __getattr__(self, name):
                calls.append(name)
                raise AttributeError(name)
        class Slotted:
            __slots__ = ("t",)
            def __init__(self):
                self.t = torch.ones(2)
        def helper():
            pass
        helper.hidden = torch.ones(3)
        class Holder:
            pass
        holder = Holder()
        holder.fn = helper
        holder.cls = Sneaky
        holder.mod = np
        sneaky, slotted = Sneaky(), Slotted()
        calls.clear()
    """)
    result = walk(ns, InspectLimits())
    assert names(result.tensors) == ["sneaky.t"]
    assert set(ns["calls"]) <= {"__class__"} and result.warnings == []


def test_attribute_depth_and_item_caps_apply():
    code = """
        class Box:
            def __init__(self, inner):
                self.inner = inner
        deep = Box(Box(Box(torch.ones(1))))
        wide = Box(None)
        for i in range(5):
            setattr(wide, f"t{i}", torch.zeros(1))
    """
    s = snap(code, InspectLimits(depth_max=2))
    assert s["truncated"] is True and "deep.inner.inner.inner" not in {t["name"] for t in s["tensors"]}
    assert by_name(snap(code)["tensors"], "deep.inner.inner.inner")
    s = snap(code, InspectLimits(container_items_max=3))
    assert s["truncated"] is True
    assert len([t for t in s["tensors"] if t["name"].startswith("wide.")]) == 2  # inner + t0, t1


def test_library_objects_outside_the_data_holders_are_not_walked():
    """Regression: walking every object's attributes went from a logger into the registry of
    all loggers (1,260 objects at every step) and marked the snapshot truncated."""
    ns, _ = run_snippet("""
        import logging, argparse
        log = logging.getLogger("playground")
        log.cache = torch.ones(1)        # not a data holder: not walked
        args = argparse.Namespace(w=torch.ones(2))
        t = torch.zeros(1)
    """)
    walker = Walker(InspectLimits())
    result = walker.run(ns)
    assert names(result.tensors) == ["t"] and not result.truncated
    assert walker.visits <= 4


def test_deques_are_walked_like_lists():
    s = snap("import collections\nreplay = collections.deque([torch.ones(1), torch.zeros(2)], maxlen=5)\n")
    assert [t["name"] for t in s["tensors"]] == ["replay[0]", "replay[1]"]


def test_containers_of_numbers_and_strings_are_skipped_not_truncated():
    """Regression: a custom Dataset's list of 5,000 file paths marked the snapshot truncated
    (over container_items_max) though it hides nothing, and a list of 1,000 losses cost 1,000
    visits at every step."""
    ns, _ = run_snippet("""
        paths = [f"img_{i}.png" for i in range(5000)]
        losses = [float(i) for i in range(1000)]
        cfg = {"lr": 0.1, "name": "run", "steps": None}
        mixed = [1, "a", None, torch.ones(1), 2.5]
        huge = list(range(200_000))     # over ATOMS_SCAN_MAX: walked as before, up to the cap
    """)
    walker = Walker(InspectLimits())
    result = walker.run({k: v for k, v in ns.items() if k != "huge"})
    assert names(result.tensors) == ["mixed[3]"] and not result.truncated
    assert walker.visits <= 10
    assert walk({"huge": ns["huge"]}, InspectLimits()).truncated is True


def test_numbers_and_strings_cost_no_visit():
    """A step-through walks after every statement: `lr = 0.1`, a loop's `i`, a mixed list's
    numbers are leaves and are not queued (34 -> 19 us per step over 25 integer names)."""
    ns = {f"x{i}": i for i in range(50)} | {"name": "run", "mixed": [1, "a", torch.ones(1), 2.5]}
    walker = Walker(InspectLimits())
    result = walker.run(ns)
    assert names(result.tensors) == ["mixed[2]"]
    assert walker.visits == 2  # the list and its tensor


def test_a_second_name_for_a_module_names_its_parameters_too():
    """The PyTorch tutorial's polynomial example: `linear_layer = model[0]`, then it prints
    `linear_layer.bias`. The module was walked as model.0 already; its second name reaches the
    same tensors, which get it as aliases (whichever name comes first stays the name)."""
    ns, _ = run_snippet("""
        model = nn.Sequential(nn.Linear(3, 1), nn.Sequential(nn.ReLU()))
        linear_layer = model[0]
        inner = model[1]
    """)
    result = walk(ns, InspectLimits())
    modules = {f.name: f.aliases for f in result.modules}
    assert modules == {
        "model": [],
        "model.0": ["linear_layer"],
        "model.1": ["inner"],
        "model.1.0": ["inner.0"],
    }
    tensors = {f.name: f.aliases for f in result.tensors}
    assert tensors == {"model.0.weight": ["linear_layer.weight"], "model.0.bias": ["linear_layer.bias"]}
    assert not result.truncated


def test_module_aliases_do_not_crowd_out_objects_not_yet_found():
    """The walks under second names run after everything else: with the visits for only the
    first names, every tensor is still found, and the aliases left out mark nothing truncated."""
    ns, _ = run_snippet("""
        model = nn.Linear(2, 2)
        again = model
        d = {'t': torch.ones(1)}
    """)
    # model, again, d, model.weight, model.bias, d['t']: had `again` been walked in turn,
    # again.weight and again.bias would have come before d['t'] and spent its visit.
    walker = Walker(InspectLimits(visits_max=6))
    result = walker.run(ns)
    assert names(result.tensors) == ["model.weight", "model.bias", "d['t']"]
    assert result.modules[0].aliases == ["again"] and result.tensors[0].aliases == []
    assert not result.truncated


def test_a_module_that_reaches_itself_gets_at_most_aliases_max_names():
    ns, _ = run_snippet("""
        m = nn.Linear(1, 1)
        m.__dict__['me'] = m     # a plain attribute, past nn.Module's registration
    """)
    result = walk(ns, InspectLimits(aliases_max=3, depth_max=50))
    assert result.modules[0].aliases == ["m.me", "m.me.me", "m.me.me.me"]
    assert by_name_found(result.tensors, "m.weight").aliases == [
        "m.me.weight",
        "m.me.me.weight",
        "m.me.me.me.weight",
    ]


def by_name_found(found_list, name: str):
    return next(f for f in found_list if f.name == name)
