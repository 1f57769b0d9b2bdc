"""app.inspector.calls: every module forward call, nested, with shapes, folded, capped, named by
the walk; and recording changes nothing the snippet computes or frees."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from torch.nn.modules import module as torch_module

from app.inspector import InspectLimits, snapshot
from app.inspector.call_shapes import ShapeCaps, summarise, summarise_one
from app.inspector.calls import CallRecorder
from app.sandbox.limits import SandboxLimits
from app.sandbox.runner import run_snippet as run_in_worker

from .helpers import PRELUDE, run_snippet


def t(*shape: int, dtype: str = "float32") -> dict:
    return {"kind": "tensor", "shape": list(shape), "dtype": dtype}


def run(code: str, trace: Any = None) -> dict:
    """The worker's payload for `code` (the runner, in process)."""
    payload = json.loads(run_in_worker(PRELUDE + code, SandboxLimits(exec_timeout_s=30.0), trace=trace))
    assert payload["ok"], payload["error"]
    return payload


def calls_of(code: str, limits: InspectLimits | None = None) -> dict:
    """The call section of `code` run under a recorder, named by its snapshot's walk."""
    with CallRecorder(limits) as recorder:
        ns, exc = run_snippet(code)
    assert exc is None, exc
    snapshot(ns)
    return recorder.section()


def rows(section: dict, *keys: str) -> list[tuple]:
    return [tuple(c[k] for k in keys) for c in section["calls"]]


CNN = """
model = nn.Sequential(
    nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()),
    nn.Flatten(),
    nn.Linear(4 * 6 * 6, 10),
)
y = model(torch.randn(2, 1, 8, 8))
"""


def test_a_nested_sequential_gives_its_call_tree_in_call_order():
    section = run(CNN)["snapshot"]
    assert rows(section, "path", "class", "parent", "depth", "params") == [
        ("model", "Sequential", None, 0, 0),
        ("model.0", "Sequential", 0, 1, 0),
        ("model.0.0", "Conv2d", 1, 2, 4 * 1 * 3 * 3 + 4),
        ("model.0.1", "ReLU", 1, 2, 0),
        ("model.1", "Flatten", 0, 1, 0),
        ("model.2", "Linear", 0, 1, 144 * 10 + 10),
    ]
    outputs = [c["output_shapes"] for c in section["calls"]]
    assert outputs == [t(2, 10), t(2, 4, 6, 6), t(2, 4, 6, 6), t(2, 4, 6, 6), t(2, 144), t(2, 10)]
    assert section["calls"][0]["input_shapes"] == [t(2, 1, 8, 8)]
    assert (section["calls_cap"], section["calls_left_out"]) == (InspectLimits().calls_max, 0)
    assert all(c["count"] == 1 and c["step"] is None for c in section["calls"])


def test_repeated_identical_calls_fold_into_a_count_and_different_ones_do_not():
    section = calls_of("""
        cell = nn.RNNCell(3, 5)
        h = torch.zeros(1, 5)
        for _ in range(7):
            h = cell(torch.randn(1, 3), h)
        model = nn.Sequential(nn.Linear(3, 3), nn.Tanh())
        for _ in range(3):
            model(torch.ones(2, 3))
        model(torch.ones(4, 3))
    """)
    assert rows(section, "path", "parent", "depth", "count") == [
        ("cell", None, 0, 7),
        ("model", None, 0, 3),  # the whole subtree folded, once per call of model
        ("model.0", 1, 1, 1),
        ("model.1", 1, 1, 1),
        ("model", None, 0, 1),  # another batch size: a row of its own
        ("model.0", 4, 1, 1),
        ("model.1", 4, 1, 1),
    ]
    assert section["calls"][4]["input_shapes"] == [t(4, 3)]


def test_inner_repeats_fold_within_their_parent():
    section = calls_of("""
        class Stack(nn.Module):
            def __init__(self):
                super().__init__()
                self.block = nn.Linear(4, 4)
            def forward(self, x):
                for _ in range(5):
                    x = self.block(x)
                return x
        net = Stack()
        net(torch.ones(1, 4))
        net(torch.ones(1, 4))
    """)
    assert rows(section, "path", "parent", "count") == [("net", None, 2), ("net.block", 0, 5)]


def test_dict_and_tuple_inputs_and_a_tuple_output_are_summarised_as_trees():
    section = calls_of("""
        class Pair(nn.Module):
            def forward(self, batch, extra):
                return batch["x"] * 2, (extra[0].long(), 3)
        pair = Pair()
        out = pair({"x": torch.ones(2, 3), "n": 5}, (torch.zeros(4), "label"))
        lstm = nn.LSTM(3, 5, batch_first=True)
        seq, (h, c) = lstm(torch.randn(2, 7, 3))
    """)
    first, second = section["calls"]
    assert first["input_shapes"] == [
        {"kind": "dict", "items": [t(2, 3) | {"key": "x"}, {"kind": "other", "type": "int", "key": "n"}]},
        {"kind": "tuple", "items": [t(4), {"kind": "other", "type": "str"}]},
    ]
    assert first["output_shapes"] == {
        "kind": "tuple",
        "items": [
            t(2, 3),
            {"kind": "tuple", "items": [t(4, dtype="int64"), {"kind": "other", "type": "int"}]},
        ],
    }
    assert second["output_shapes"] == {
        "kind": "tuple",
        "items": [t(2, 7, 5), {"kind": "tuple", "items": [t(1, 2, 5), t(1, 2, 5)]}],
    }
    assert second["params"] == 4 * 5 * (3 + 5) + 2 * 4 * 5


def test_a_module_no_name_reaches_is_its_class_in_angle_brackets():
    section = calls_of("""
        y = nn.Linear(2, 3)(torch.ones(2))
        keep = [nn.ReLU()]
        keep[0](y)
        model = nn.Sequential(nn.Tanh())
        alias = model[0]
        alias(y)
    """)
    assert [c["path"] for c in section["calls"]] == ["<Linear>", "keep[0]", "model.0"]


def test_summaries_are_bounded_in_nodes_and_levels():
    caps = ShapeCaps(nodes_max=8, depth_max=2, chars_max=10)
    many = summarise((list(torch.ones(1)) * 100,), caps)
    assert many[0]["kind"] == "list" and many[0]["truncated"] is True and len(many[0]["items"]) == 7
    deep: Any = torch.ones(1)
    for _ in range(10):
        deep = [deep]
    tree = summarise_one(deep, caps)
    assert tree["items"][0]["items"][0] == {"kind": "list", "items": [], "truncated": True}
    assert summarise_one({"k" * 50: 1, (1, 2): 2}, caps)["items"] == [
        {"key": "kkkkkkkkk…", "kind": "other", "type": "int"},
        {"key": "<tuple>", "kind": "other", "type": "int"},
    ]


def test_the_cap_lists_calls_max_rows_and_counts_the_rest():
    section = calls_of(
        """
        layers = [nn.Linear(1, 1) for _ in range(6)]
        for layer in layers:
            layer(torch.ones(1))
        seq = nn.Sequential(nn.ReLU(), nn.ReLU())
        seq(torch.ones(1))
        """,
        InspectLimits(calls_max=4),
    )
    assert [c["path"] for c in section["calls"]] == [f"layers[{i}]" for i in range(4)]
    assert (section["calls_cap"], section["calls_left_out"]) == (4, 2 + 3)


def test_calls_nested_deeper_than_the_depth_cap_are_counted():
    section = calls_of(
        """
        chain = nn.Sequential(nn.Sequential(nn.Sequential(nn.ReLU())))
        chain(torch.ones(1))
        """,
        InspectLimits(call_depth_max=1),
    )
    assert [c["depth"] for c in section["calls"]] == [0, 1]
    assert section["calls_left_out"] == 2


def test_a_traced_run_gives_each_call_the_step_it_ran_in():
    payload = run(
        """
model = nn.Linear(2, 2)
x = torch.ones(2)
y = model(x)
for i in range(3):
    y = model(y)
""",
        trace={"loop_iterations_max": 1, "loop_body_iterations_max": 1},
    )
    lines = {s["index"]: s["start_line"] for s in payload["steps"]}
    calls = payload["snapshot"]["calls"]
    # The prelude is lines 1-3, `y = model(x)` line 7. The loop's first iteration is stepped
    # statement by statement (line 9); the other two run without steps and belong to the step
    # after the loop (line 8), where, equal, they fold. Equal calls of different steps do not.
    assert [(lines[c["step"]], c["count"]) for c in calls] == [(7, 1), (9, 1), (8, 2)]


def test_hostile_modules_leave_the_snippet_s_results_as_they_were():
    code = """
    class Raises(nn.Module):
        def forward(self, x):
            raise ValueError("no")
    class Odd(nn.Module):
        def __getattr__(self, name):
            raise RuntimeError("getattr " + name)
        def forward(self, x):
            return "text", None, {"k": [x.sum().item()]}
    class Slotless(nn.Module):
        def forward(self, *xs):
            return len(xs)
    inner = nn.Linear(3, 3)
    outer = nn.Sequential(inner, Raises())
    try:
        outer(torch.ones(3))
    except ValueError as exc:
        caught = str(exc)
    odd = Odd()
    out = odd(torch.arange(3.0))
    n = Slotless()(*[torch.ones(1)] * 100)
    after = inner(torch.ones(3))
    """
    torch.manual_seed(0)
    plain, exc = run_snippet(code)
    assert exc is None
    torch.manual_seed(0)
    with CallRecorder() as recorder:
        recorded, exc = run_snippet(code)
    assert exc is None
    assert (recorded["caught"], recorded["out"], recorded["n"]) == (plain["caught"], plain["out"], plain["n"])
    assert torch.equal(recorded["after"], plain["after"])
    snapshot(recorded)
    section = recorder.section()
    assert rows(section, "path", "parent", "depth") == [
        ("outer", None, 0),
        ("inner", 0, 1),  # its shortest name
        ("outer.1", 0, 1),  # raised: closed by the always_call hook, no output
        ("odd", None, 0),
        ("<Slotless>", None, 0),
        ("inner", None, 0),
    ]
    assert section["calls"][2]["output_shapes"] == {"kind": "other", "type": "NoneType"}
    assert section["calls"][3]["output_shapes"]["items"][0] == {"kind": "other", "type": "str"}
    slotless = section["calls"][4]["input_shapes"]
    assert len(slotless) == InspectLimits().call_shape_nodes_max  # the rest not summarised
    assert recorder.errors == 0


def test_the_hooks_are_gone_after_the_run_even_one_that_fails():
    for code in (CNN, "nn.Linear(2, 2)(torch.ones(3))", "raise SystemExit(3)"):
        json.loads(run_in_worker(PRELUDE + code, SandboxLimits(exec_timeout_s=30.0)))
        assert not torch_module._global_forward_hooks
        assert not torch_module._global_forward_pre_hooks
        assert not torch_module._global_forward_hooks_always_called
        assert not torch_module._has_any_global_hook()


def test_a_failing_run_still_lists_the_calls_made_before_it_failed():
    payload = json.loads(
        run_in_worker(PRELUDE + "m = nn.Linear(2, 2)\nm(torch.ones(2))\nm(torch.ones(3))\n", SandboxLimits())
    )
    assert not payload["ok"]
    assert rows(payload["snapshot"], "path", "input_shapes", "output_shapes") == [
        ("m", [t(2)], t(2)),
        ("m", [t(3)], {"kind": "other", "type": "NoneType"}),
    ]


def test_recording_keeps_no_module_or_tensor_alive():
    code = """
    import gc, weakref
    m = nn.Linear(2, 2)
    out = m(torch.ones(2))
    refs = [weakref.ref(m), weakref.ref(out)]
    del m, out
    gc.collect()
    freed = [r() is None for r in refs]
    """
    with CallRecorder() as recorder:
        ns, exc = run_snippet(code)
    assert exc is None and ns["freed"] == [True, True]
    assert [c["path"] for c in recorder.section()["calls"]] == ["<Linear>"]


def test_a_snippet_calling_no_module_records_nothing():
    payload = run("x = torch.ones(3) * 2\n")
    assert payload["snapshot"]["calls"] == [] and payload["snapshot"]["calls_left_out"] == 0


# ---- recording changes no result: the slow path of Module.__call__ runs the same forward ----
SAME_RESULTS = {
    "cnn": """
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                              nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.5), nn.Linear(8 * 4 * 4, 5))
        x = torch.randn(4, 3, 8, 8)
        train_out = model(x)
        train_out.sum().backward()
        grad = model[0].weight.grad.clone()
        stats = model[1].running_mean.clone(), model[1].running_var.clone()
        model.eval()
        eval_out = model(x)
    """,
    "lstm": """
        lstm = nn.LSTM(4, 6, num_layers=2, batch_first=True, dropout=0.3)
        x = torch.randn(3, 5, 4)
        out, (h, c) = lstm(x)
        lstm.eval()
        with torch.no_grad():
            eval_out, _ = lstm(x)
        gru = nn.GRUCell(4, 6)
        g = gru(x[:, 0])
    """,
    "transformer": """
        layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, batch_first=True)
        encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        x = torch.randn(2, 5, 8)
        train_out = encoder(x)
        encoder.eval()
        with torch.no_grad():  # the fast path (torch._transformer_encoder_layer_fwd)
            fast_out = encoder(x)
            mask = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
            masked_out = encoder(x, src_key_padding_mask=mask)
    """,
    "batchnorm": """
        bn = nn.BatchNorm1d(3, momentum=None)
        x = torch.randn(6, 3)
        a = bn(x)
        b = bn(x * 2)
        stats = bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone()
        bn.eval()
        c = bn(x)
    """,
}


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, tuple | list):
        return [t for v in value for t in _tensors(v)]
    return []


@pytest.mark.parametrize("name", SAME_RESULTS, ids=str)
def test_results_are_identical_with_and_without_recording(name):
    code = SAME_RESULTS[name]
    torch.manual_seed(7)
    plain, exc = run_snippet(code)
    assert exc is None, exc
    torch.manual_seed(7)
    with CallRecorder() as recorder:
        recorded, exc = run_snippet(code)
    assert exc is None, exc
    assert recorder.calls and recorder.errors == 0
    compared = 0
    for key, value in plain.items():
        for a, b in zip(_tensors(value), _tensors(recorded[key]), strict=True):
            assert torch.equal(a, b), key
            assert a.requires_grad == b.requires_grad and (a.grad_fn is None) == (b.grad_fn is None), key
            compared += 1
    assert compared >= 5


def test_the_transformer_fast_path_is_still_taken_while_recording():
    """Its check looks at each module's own hooks, not the global ones: in eval under no_grad
    the layer is one call (torch._transformer_encoder_layer_fwd), its sublayers never called."""
    section = calls_of("""
        layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, batch_first=True)
        layer.eval()
        with torch.no_grad():
            y = layer(torch.randn(2, 5, 8))
        layer.train()
        z = layer(torch.randn(2, 5, 8))
    """)
    paths = [c["path"] for c in section["calls"]]
    assert paths[0] == "layer" and section["calls"][1]["parent"] is None  # no sublayer calls
    assert "layer.self_attn" in paths[1:] and "layer.linear1" in paths[1:]


def test_calls_made_while_the_inspector_reads_are_not_the_snippet_s():
    """A step's observation runs under the inspector's budget: a module called from inside it
    (a snippet's code the reading ran) is no call of the snippet's, nor are its inner calls."""
    from app.inspector import budget

    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with CallRecorder() as recorder:
        with budget.limit(5.0):
            model(torch.ones(2))
        model(torch.ones(2))
    section = recorder.section({id(model): "model"})
    assert rows(section, "path", "depth") == [("model", 0), ("<Linear>", 1)]
    assert section["calls_left_out"] == 0


def test_the_worker_sends_every_shape_node_key_the_schema_allows_and_no_other():
    """The contract walk for shape summaries (JSON to the schema, so KeyAudit passes them by)."""
    from app.convert import _flatten
    from app.schema_memory import SHAPE_NODE_KEYS
    from app.schemas import RunResponse
    from tests.contract_walk import shape_node_keys

    payload = run("""
class Echo(nn.Module):
    def forward(self, *args):
        return args[0]
echo = Echo()
echo({"x": torch.ones(2)}, [torch.ones(1)] * 40, 3)
""")
    calls = payload["snapshot"]["calls"]
    trees = [tree for c in calls for tree in (*c["input_shapes"], c["output_shapes"])]
    assert shape_node_keys(trees) == SHAPE_NODE_KEYS
    assert RunResponse.model_validate(_flatten(payload)).calls[0].input_shapes[2] == {
        "kind": "other",
        "type": "int",
    }


def test_another_thread_s_calls_are_counted_not_listed():
    """One stack of open calls: a call from another thread would nest into whatever the main
    thread has open."""
    section = calls_of("""
        import threading
        worker_model = nn.Linear(2, 2)
        thread = threading.Thread(target=lambda: worker_model(torch.ones(2)))
        thread.start()
        thread.join()
        main_model = nn.Linear(2, 2)
        main_model(torch.ones(2))
    """)
    assert rows(section, "path", "depth") == [("main_model", 0)]
    assert section["calls_left_out"] == 1


def test_the_recorder_s_caps_fit_the_schema_s():
    """An honest snippet at a cap is cut by the worker, never refused as an invalid result."""
    from app.schema_memory import CALL_DEPTH_MAX, CALLS_MAX, SHAPE_DEPTH_MAX, SHAPE_NODES_MAX

    limits = InspectLimits()
    assert limits.calls_max <= CALLS_MAX and limits.call_depth_max <= CALL_DEPTH_MAX
    assert limits.call_shape_nodes_max <= SHAPE_NODES_MAX and limits.call_shape_depth_max < SHAPE_DEPTH_MAX
    from app.schemas import ModuleCall, check_calls

    deepest = calls_of("""
        class Many(nn.Module):
            def forward(self, *args):
                return args
        chain = Many()
        for _ in range(70):
            chain = nn.Sequential(chain)
        chain([[[[[[[[[[torch.ones(1)]]]]]]]]]])
        Many()([[[[[[[[[[torch.ones(1)]]]]]]]]]], *[1] * 300)
    """)
    check_calls([ModuleCall.model_validate(c) for c in deepest["calls"]])
    assert len(deepest["calls"]) == limits.call_depth_max + 2 and deepest["calls_left_out"] == 71 - 65


def test_a_call_the_time_limit_ends_is_listed_open_and_steps_past_the_cap_are_none():
    spin = """
class Spin(nn.Module):
    def forward(self, x):
        while True:
            pass
outer = nn.Sequential(nn.Linear(2, 2), Spin())
outer(torch.ones(2))
"""
    payload = json.loads(run_in_worker(PRELUDE + spin, SandboxLimits(exec_timeout_s=0.5)))
    assert payload["error"]["type"] == "TimeLimit"
    assert rows(payload["snapshot"], "path", "output_shapes", "params") == [
        ("outer", None, 0),  # never returned: no output, and its parameters were not counted
        ("outer.0", t(2), 6),
        ("outer.1", None, 0),
    ]
    # Steps 0-2 are the prelude's, 3 makes m, 4 is the first call; stepping stops at 5.
    traced = run("m = nn.Linear(2, 2)\nm(torch.ones(2))\nm(torch.ones(3, 2))\n", trace={"steps_max": 5})
    assert len(traced["steps"]) == 5 and traced["steps_truncated"]
    assert [c["step"] for c in traced["snapshot"]["calls"]] == [4, None]
