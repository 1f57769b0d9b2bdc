"""The memory ledger (app.inspector.memory), numbers worked out by hand (issue #18).

float32 is 4 B an element, float64 and int64 8 B. Every ledger here is checked by the public
schema too (app.schema_memory.Memory: the categories sum to the total, pinned_bytes to the
pinned storages' unused bytes), and the sum is asserted on its own as well.
"""

from __future__ import annotations

import json

import pytest

from app.inspector import memory, snapshot
from app.schema_memory import CATEGORIES, Memory

from .helpers import run_snippet, storage_of

ZERO = dict.fromkeys(CATEGORIES, 0)


def ledger_of(code: str) -> tuple[dict, dict]:
    """(the ledger, the snapshot) after running code."""
    ns, exc = run_snippet(code)
    assert exc is None, f"snippet failed: {exc!r}"
    snap = snapshot(ns)
    mem = snap["memory"]
    assert mem is not None, snap["warnings"]
    assert sum(mem["by_category"].values()) == mem["total_bytes"]
    Memory.model_validate(json.loads(json.dumps(mem)))
    return mem, snap


def categories(**nonzero: int) -> dict:
    return ZERO | nonzero


def test_linear_with_adam_after_one_step():
    """A 1000x1000 Linear: weight 1,000,000 + bias 1,000 floats = 4,004,000 B; their grads the
    same; Adam's exp_avg and exp_avg_sq twice that, plus one `step` counter per parameter, which
    in torch 2.13 is a 0-d float32 tensor: 2 x 4 B."""
    mem, _ = ledger_of("""
        model = nn.Linear(1000, 1000)
        opt = torch.optim.Adam(model.parameters())
        model(torch.ones(1, 1000)).sum().backward()
        opt.step()
        steps = [s["step"] for s in opt.state.values()]
        assert all(s.dtype == torch.float32 and s.dim() == 0 for s in steps) and len(steps) == 2
        del steps
    """)
    assert mem["by_category"] == categories(
        parameters=4_004_000, gradients=4_004_000, optimizer_state=8_008_000 + 8
    )
    assert mem["total_bytes"] == 16_016_008 and mem["pinned"] == [] and mem["by_device"] == {}


def test_a_small_view_pins_its_whole_storage_and_clone_releases_it():
    mem, snap = ledger_of("big = torch.zeros(100_000)\ny = big[0:1000]\ndel big")
    pinned = {"storage": storage_of(snap, "y"), "nbytes": 400_000, "used_bytes": 4_000, "names": ["y"]}
    assert mem["pinned"] == [pinned] and mem["pinned_bytes"] == 396_000
    assert mem["by_category"] == categories(tensors=400_000)

    mem, _ = ledger_of("big = torch.zeros(100_000)\ny = big[0:1000].clone()\ndel big")
    assert (mem["pinned"], mem["pinned_bytes"], mem["total_bytes"]) == ([], 0, 4_000)


def test_pinned_names_every_name_holding_the_storage():
    mem, _ = ledger_of("big = torch.zeros(1000)\nhead = big[:10]\nalso = head\ntail = big[-10:]\ndel big")
    (pinned,) = mem["pinned"]
    assert pinned["names"] == ["head", "also", "tail"] and pinned["used_bytes"] == 80


def test_two_overlapping_views_are_counted_once_and_cover_the_storage_together():
    mem, _ = ledger_of("x = torch.zeros(100)\na = x[:60]\nb = x[40:]\ndel x")
    assert mem["total_bytes"] == 400 and mem["pinned"] == []  # [0, 240) and [160, 400): all of it
    mem, _ = ledger_of("x = torch.zeros(100)\na = x[:60]\nb = x[20:50]\ndel x")
    assert mem["total_bytes"] == 400 and mem["pinned"][0]["used_bytes"] == 240
    assert mem["pinned_bytes"] == 160


def test_a_from_numpy_pair_is_one_tensor_allocation_and_an_array_alone_is_numpy():
    mem, _ = ledger_of("a = np.ones(10)\nt = torch.from_numpy(a)")
    assert mem["by_category"] == categories(tensors=80)
    mem, _ = ledger_of("a = np.ones(10)\nview = a[2:]")
    assert mem["by_category"] == categories(numpy=80) and mem["pinned"] == []
    mem, _ = ledger_of("n = torch.ones(5, dtype=torch.float64).numpy()")  # the tensor is unnamed
    assert mem["by_category"] == categories(tensors=40)


def test_the_graph_holds_intermediates_until_backward():
    """exp saves its result and sin its input, the same 4,000 B no name holds; sum saves no
    tensor. x (4,000 B) and loss (4 B) are named."""
    code = "x = torch.ones(1000, requires_grad=True)\nloss = x.exp().sin().sum()\n"
    mem, _ = ledger_of(code)
    assert mem["by_category"] == categories(tensors=4_004, saved_for_backward=4_000)
    mem, _ = ledger_of(code + "loss.backward()")
    assert mem["by_category"] == categories(tensors=4_004, gradients=4_000)


def test_a_saved_tensor_a_name_holds_is_that_names():
    mem, _ = ledger_of("x = torch.ones(1000, requires_grad=True)\nh = x.exp()\nloss = h.sin().sum()")
    assert mem["by_category"] == categories(tensors=8_004)


def test_zero_grad_sets_gradients_to_none():
    code = """
        model = nn.Linear(10, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        model(torch.ones(4, 10)).sum().backward()
    """
    mem, _ = ledger_of(code)
    assert mem["by_category"] == categories(parameters=44, gradients=44)
    mem, _ = ledger_of(code + "    opt.zero_grad()\n")
    assert mem["by_category"] == categories(parameters=44)


def test_batchnorm_buffers():
    """BatchNorm1d(10): weight and bias 2 x 40 B; running_mean and running_var 2 x 40 B and
    num_batches_tracked, an int64: 8 B."""
    mem, _ = ledger_of("bn = nn.BatchNorm1d(10)")
    assert mem["by_category"] == categories(parameters=80, buffers=88)


def test_a_parameter_also_held_by_a_name_is_counted_as_a_parameter_once():
    mem, _ = ledger_of("lin = nn.Linear(10, 10)\nw = lin.weight\nflat = lin.weight.view(100)")
    assert mem["by_category"] == categories(parameters=440)


def test_an_optimizers_plain_tensor_is_a_parameter_and_its_momentum_optimizer_state():
    mem, _ = ledger_of("""
        w = torch.ones(10, requires_grad=True)
        opt = torch.optim.SGD([w], lr=0.1, momentum=0.9)
        (w * w).sum().backward()
        opt.step()
    """)
    assert mem["by_category"] == categories(parameters=40, gradients=40, optimizer_state=40)


def test_meta_sparse_nested_and_lazy_count_what_is_real():
    """meta: no memory; COO 3x3 of 9 nonzeros: int64 indices 2x9 (144 B) and values (36 B);
    nested [2] and [3] floats: a 20 B buffer; an uninitialized lazy weight: nothing."""
    mem, _ = ledger_of("""
        import warnings
        warnings.simplefilter("ignore")
        meta = torch.empty(10**12, device="meta")
        sp = torch.ones(3, 3).to_sparse()
        nt = torch.nested.nested_tensor([torch.ones(2), torch.ones(3)])
        lazy = nn.LazyLinear(3)
    """)
    assert mem["by_category"] == categories(tensors=144 + 36 + 20)


def test_a_hostile_snippet_does_not_break_the_ledger():
    """A wrapper subclass claiming 2**50 elements (no memory), a subclass whose __getattr__ and
    __torch_function__ raise, a custom Function whose saved tensors cannot be read."""
    mem, snap = ledger_of("""
        class Fake(torch.Tensor):
            @staticmethod
            def __new__(cls):
                return torch.Tensor._make_wrapper_subclass(cls, (2**50,), dtype=torch.float32)
            @classmethod
            def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
                raise RuntimeError("no")
        class Rude(torch.Tensor):
            def __getattr__(self, name):
                raise KeyboardInterrupt(name)
            @classmethod
            def __torch_function__(cls, func, types, args=(), kwargs=None):
                raise SystemExit("no")
        class Fn(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * 2
            @staticmethod
            def backward(ctx, g):
                return g
        fake = Fake()
        rude = torch.ones(4).as_subclass(Rude)
        x = torch.ones(3, requires_grad=True)
        y = Fn.apply(x)
        y.grad_fn.__class__.saved_tensors = property(lambda self: 1 / 0)
    """)
    assert mem["by_category"]["tensors"] == 16 + 12 + 12  # rude, x, y; fake has none
    assert not [w for w in snap["warnings"] if w.startswith("memory")]


def test_the_switch_leaves_the_ledger_out(monkeypatch):
    monkeypatch.setattr(memory, "LEDGER_ON", False)
    ns, _ = run_snippet("x = torch.ones(2)")
    assert snapshot(ns)["memory"] is None


def test_a_failing_ledger_is_a_warning_not_a_lost_snapshot(monkeypatch):
    def broken(*args):
        raise RuntimeError("ledger exploded")

    monkeypatch.setattr(memory, "ledger", broken)
    ns, _ = run_snippet("x = torch.ones(2)")
    snap = snapshot(ns)
    assert snap["memory"] is None and [t["name"] for t in snap["tensors"]] == ["x"]
    assert "memory: RuntimeError: ledger exploded" in snap["warnings"]


@pytest.mark.parametrize(
    ("spans", "expected"),
    [
        ([("cpu", 0, 10, 4), ("cpu", 5, 20, 0)], [("cpu", 20, 0)]),  # overlap: once, first category
        ([("cpu", 0, 10, 4), ("cpu", 10, 20, 6)], [("cpu", 10, 4), ("cpu", 10, 6)]),  # touching
        ([("cpu", 0, 10, 4), ("cuda:0", 0, 10, 4)], [("cpu", 10, 4), ("cuda:0", 10, 4)]),
        ([("cpu", 5, 5, 4)], []),  # empty
    ],
)
def test_the_interval_union_counts_each_byte_once_per_device(spans, expected):
    assert memory._union(spans) == expected


def test_two_devices_are_listed_and_one_is_not():
    two = memory._sums([("cpu", 10, memory.TENSORS), ("cuda:0", 30, memory.PARAMETERS)])
    assert two["total_bytes"] == 40 and set(two["by_device"]) == {"cpu", "cuda:0"}
    assert two["by_device"]["cuda:0"] == {"total_bytes": 30, "by_category": categories(parameters=30)}
    assert memory._sums([("cpu", 10, memory.TENSORS)])["by_device"] == {}


def test_claimed_bytes_past_the_schemas_maximum_are_cut_and_still_sum():
    huge = memory._sums([("cpu", memory.BYTES_MAX, memory.PARAMETERS), ("cpu", 10, memory.SAVED)])
    assert huge["total_bytes"] == memory.BYTES_MAX
    assert huge["by_category"]["saved_for_backward"] == 0


def test_the_ledger_and_the_schema_share_their_categories_and_caps():
    """app.inspector.memory spells out the schema's categories and caps (the inspector imports no
    web code); this fails when the two drift apart."""
    from app import schema_memory, schema_rules
    from app.inspector import memory

    assert memory.CATEGORIES == schema_memory.CATEGORIES
    assert memory.DEVICES_MAX == schema_memory.DEVICES_MAX
    assert memory.BYTES_MAX == schema_rules.BYTES_MAX
