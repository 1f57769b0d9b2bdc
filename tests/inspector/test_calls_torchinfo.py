"""torchinfo (a test-only dependency) as the oracle of the module-call tree (issue #18): on a
CNN, an MLP, an LSTM model and a TransformerEncoder, each call's output shape and the parameter
counts agree with torchinfo.summary()'s layers, in the same order.

What differs, and is compared accordingly:
* torchinfo lists modules that are never called (a ModuleList): only its executed layers count.
* torchinfo's output_size of a tuple output is its first tensor's shape; ours is the whole tree.
* torchinfo's num_params is recursive over the module's parameters; a call's `params` is the
  module's own, its children being calls of their own. So a layer's num_params is the sum of its
  call subtree's `params` plus the parameters of its submodules that were never called: a
  MultiheadAttention uses its out_proj's weight without calling out_proj, so out_proj is no call
  and its 72 parameters show only in torchinfo's count (and in the Modules panel).
* Every parameter here is trainable, so torchinfo's trainable_params equals num_params; a call
  does not split the two.
The snippets run in train mode with autograd on, where TransformerEncoderLayer takes no fast
path (torchinfo's per-module hooks turn it off; global hooks do not: test_calls.py).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torchinfo

from app.inspector import snapshot
from app.inspector.calls import CallRecorder

from .helpers import run_snippet

MODELS = {
    "cnn": """
        model = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Sequential(nn.Conv2d(8, 16, 3), nn.ReLU()),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
        )
        x = torch.randn(4, 3, 16, 16)
    """,
    "mlp": """
        class MLP(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Sequential(nn.Linear(20, 64), nn.GELU(), nn.Dropout(0.1), nn.Linear(64, 32))
                self.norm = nn.LayerNorm(32)
                self.head = nn.Linear(32, 3, bias=False)
            def forward(self, x):
                return self.head(torch.relu(self.norm(self.body(x))))
        model = MLP()
        x = torch.randn(5, 20)
    """,
    "lstm": """
        class Tagger(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = nn.Embedding(50, 8)
                self.lstm = nn.LSTM(8, 12, num_layers=2, batch_first=True, bidirectional=True)
                self.head = nn.Linear(24, 4)
            def forward(self, tokens):
                out, (h, c) = self.lstm(self.emb(tokens))
                return self.head(out)
        model = Tagger()
        x = torch.randint(0, 50, (3, 9))
    """,
    "transformer": """
        layer = nn.TransformerEncoderLayer(d_model=16, nhead=4, dim_feedforward=32, batch_first=True)
        model = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        x = torch.randn(2, 6, 16)
    """,
}


def _recorded(code: str) -> tuple[dict, list[dict]]:
    """The snippet's namespace and the calls of `y = model(x)` run in it."""
    ns, exc = run_snippet(code)
    assert exc is None, exc
    with CallRecorder() as recorder:
        ns["y"] = ns["model"](ns["x"])
    snapshot(ns)
    return ns, recorder.section()["calls"]


def _first_tensor_shape(tree: Any) -> list[int]:
    todo = [tree]
    while todo:
        node = todo.pop(0)
        if node["kind"] == "tensor":
            return node["shape"]
        todo = node.get("items", []) + todo
    return []


def _subtree(calls: list[dict], row: int) -> list[int]:
    """The rows of the call at `row` and of the calls inside it (they follow it)."""
    end = row + 1
    while end < len(calls) and calls[end]["depth"] > calls[row]["depth"]:
        end += 1
    return list(range(row, end))


def _own_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters(recurse=False))


@pytest.mark.parametrize("name", MODELS, ids=str)
def test_the_call_tree_agrees_with_torchinfo(name):
    ns, calls = _recorded(MODELS[name])
    model = ns["model"]
    stats = torchinfo.summary(model, input_data=ns["x"], verbose=0, mode="train")
    layers = [layer for layer in stats.summary_list if layer.executed]
    assert [c["class"] for c in calls] == [layer.class_name for layer in layers]
    assert [c["count"] for c in calls] == [1] * len(calls)
    modules = {("model." + n if n else "model"): m for n, m in model.named_modules()}
    called = {c["path"] for c in calls}
    for row, (call, layer) in enumerate(zip(calls, layers, strict=True)):
        assert modules[call["path"]] is layer.module, call["path"]
        assert _first_tensor_shape(call["output_shapes"]) == layer.output_size, call["path"]
        assert call["params"] == _own_params(layer.module), call["path"]
        in_calls = sum(calls[i]["params"] for i in _subtree(calls, row))
        never_called = sum(
            _own_params(m)
            for n, m in layer.module.named_modules()
            if n and f"{call['path']}.{n}" not in called
        )
        assert in_calls + never_called == layer.num_params == layer.trainable_params, call["path"]
    assert (
        sum(c["params"] for c in calls) + sum(_own_params(m) for p, m in modules.items() if p not in called)
        == stats.total_params
    )


def test_torchinfo_and_the_calls_differ_only_by_modules_never_called():
    """The difference named in the module docstring, pinned: without out_proj's parameters the
    transformer's call tree would be short of torchinfo's total by exactly 2 x 16 x 17."""
    ns, calls = _recorded(MODELS["transformer"])
    stats = torchinfo.summary(ns["model"], input_data=ns["x"], verbose=0, mode="train")
    assert not any(c["path"].endswith("out_proj") for c in calls)
    assert stats.total_params - sum(c["params"] for c in calls) == 2 * (16 * 16 + 16)
