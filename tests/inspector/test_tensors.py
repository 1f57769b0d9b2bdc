"""Tensor entries, flags and unusual tensors (app/inspector/tensors.py)."""

from __future__ import annotations

import warnings

import pytest
import torch

from app.inspector import InspectLimits, snapshot
from app.inspector.tensors import node_name, tensor_flags, tensor_shape

from .helpers import by_name, strict_json

TENSOR_KEYS = {
    "name",
    "aliases",
    "shape",
    "dtype",
    "device",
    "layout",
    "stride",
    "storage_offset",
    "is_contiguous",
    "numel",
    "element_size",
    "nbytes",
    "requires_grad",
    "is_leaf",
    "grad_fn",
    "version",
    "is_view",
    "base",
    "is_parameter",
    "grad",
    "storage",
    "byte_range",
    "preview",
    "stats",
    "flags",
}


def quiet(make):
    """Build tensors whose constructors emit beta/deprecation UserWarnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make()


def inference_tensor():
    with torch.inference_mode():
        return torch.ones(3)


UNUSUAL = {
    "coo": (lambda: torch.eye(3).to_sparse(), {"sparse"}),
    "csr": (lambda: quiet(lambda: torch.eye(3).to_sparse_csr()), {"sparse"}),
    "nested": (lambda: quiet(lambda: torch.nested.nested_tensor([torch.ones(2), torch.ones(3)])), {"nested"}),
    "meta": (lambda: torch.empty(2, 3, device="meta"), {"meta"}),
    "empty": (lambda: torch.zeros(0, 4), {"zero_size"}),
    "expanded": (lambda: torch.ones(3, 1).expand(3, 4), {"expanded"}),
    "conj": (lambda: torch.tensor([1 + 1j]).conj(), {"conj"}),
    "neg": (lambda: torch.tensor([1 + 1j]).conj().imag, {"neg"}),
    "bf16": (lambda: torch.ones(2, dtype=torch.bfloat16), set()),
    "f16": (lambda: torch.ones(2, dtype=torch.float16), set()),
    "c64": (lambda: torch.ones(2, dtype=torch.complex64), set()),
    "boolean": (lambda: torch.tensor([True]), set()),
    "i64": (lambda: torch.arange(3), set()),
    "quant": (
        lambda: quiet(lambda: torch.quantize_per_tensor(torch.arange(4.0), 0.5, 0, torch.quint8)),
        {"quantized"},
    ),
    "param": (lambda: torch.nn.Parameter(torch.ones(2)), set()),
    "rg": (lambda: torch.ones(2, requires_grad=True) * 2, set()),
    "inf_mode": (inference_tensor, {"inference"}),
    "scalar": (lambda: torch.tensor(1.5), set()),
}


@pytest.mark.parametrize("key", sorted(UNUSUAL))
def test_unusual_tensors_never_crash_and_flag(key):
    make, flags = UNUSUAL[key]
    t = make()
    s = snapshot({key: t})
    assert s["warnings"] == []
    entry = by_name(s["tensors"], key)
    assert set(entry) == TENSOR_KEYS
    assert flags <= set(entry["flags"])
    strict_json(s)


def test_sparse_nested_meta_have_no_storage_or_strides():
    s = snapshot({"coo": UNUSUAL["coo"][0](), "nested": UNUSUAL["nested"][0](), "meta": UNUSUAL["meta"][0]()})
    for name in ("coo", "nested", "meta"):
        e = by_name(s["tensors"], name)
        assert e["storage"] is None and e["byte_range"] is None
    assert by_name(s["tensors"], "coo")["stride"] is None  # torch reports (0, 0): not real
    assert by_name(s["tensors"], "coo")["layout"] == "torch.sparse_coo"
    assert by_name(s["tensors"], "meta")["stride"] == [3, 1]
    assert s["storages"] == []


def test_nested_shape_has_minus_one_for_ragged_dims():
    assert tensor_shape(UNUSUAL["nested"][0]()) == [2, -1]


def test_expanded_is_flagged_not_plain_broadcast_of_size_one():
    assert "expanded" in tensor_flags(torch.ones(3, 1).expand(3, 4))
    assert "expanded" not in tensor_flags(torch.ones(1, 4))


def test_inference_tensor_has_no_version():
    e = snapshot({"t": inference_tensor()})["tensors"][0]
    assert e["version"] is None and e["preview"]["values"] == [1.0, 1.0, 1.0]


def test_requires_grad_and_parameter_fields():
    x = torch.ones(2, requires_grad=True)
    y = x * 2
    p = torch.nn.Parameter(torch.zeros(1))
    s = snapshot({"x": x, "y": y, "p": p})
    ey = by_name(s["tensors"], "y")
    assert ey["grad_fn"] == "MulBackward0" and ey["is_leaf"] is False and ey["requires_grad"]
    assert by_name(s["tensors"], "p")["is_parameter"] is True
    assert by_name(s["tensors"], "x")["is_parameter"] is False


def test_view_base_and_version():
    x = torch.zeros(4)
    v = x[1:3]
    v.add_(1)
    s = snapshot({"x": x, "v": v})
    ev = by_name(s["tensors"], "v")
    assert ev["is_view"] is True and ev["base"] == "x" and ev["storage_offset"] == 1
    assert ev["version"] == 1 and by_name(s["tensors"], "x")["version"] == 1


def test_quantized_preview_is_dequantized():
    e = snapshot({"q": UNUSUAL["quant"][0]()})["tensors"][0]
    assert e["preview"]["values"] == [0.0, 1.0, 2.0, 3.0]
    assert e["stats"] is None and e["storage"] == "s0"


def test_a_tensor_subclass_whose_torch_function_raises_is_read_through_torch_itself():
    """It used to be an "uninspectable" stub with a warning: the inspector now reads under
    torch._C.DisableTorchFunction, so the subclass's code never runs."""

    class Broken(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            raise RuntimeError("no touching")

    b = torch.ones(2).as_subclass(Broken)
    x = torch.ones(1, requires_grad=True)
    s = snapshot({"b": b, "ok": torch.ones(1), "y": x * 2})
    assert by_name(s["tensors"], "ok")["preview"]["values"] == [1.0]
    assert by_name(s["tensors"], "b")["flags"] == []
    assert by_name(s["tensors"], "b")["preview"]["values"] == [1.0, 1.0]
    assert s["warnings"] == []
    assert [n["name"] for n in s["graph"]["nodes"]] == ["MulBackward0", "AccumulateGrad"]
    strict_json(s)


def test_node_name_strips_cpp_prefix():
    x = torch.ones(1, requires_grad=True)
    fn = (x * 2).grad_fn
    assert fn is not None
    acc = fn.next_functions[0][0]
    assert acc is not None and acc.name().startswith("torch::autograd::")
    assert node_name(acc) == "AccumulateGrad"


def test_caps_limit_tensor_entries():
    s = snapshot({f"t{i}": torch.ones(1) for i in range(4)}, limits=InspectLimits(tensors_max=2))
    assert [t["name"] for t in s["tensors"]] == ["t0", "t1"] and s["truncated"]
