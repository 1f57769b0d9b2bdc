"""Explanations are built from errors torch really raises (messages captured live, not typed in)."""

import sys

import pytest
import torch

from app.schemas import RunError
from app.web.explain import explain, receiver_of
from tests.web.pagekit import response_for


def _raise(fn) -> str:
    with pytest.raises(RuntimeError) as info:
        fn()
    return str(info.value)


def _explain(message, code, line, namespace=None):
    tensors = response_for(namespace or {}).tensors
    return explain(RunError(type="RuntimeError", message=message, line=line), code, tensors)


def test_view_on_transposed_tensor_names_the_dims_that_cannot_merge():
    b = torch.arange(12).view(3, 4).t()
    msg = _raise(lambda: b.view(-1))
    ex = _explain(msg, "import torch\nc = b.view(-1)\n", 2, {"b": b})
    text = " ".join(ex.points)
    assert "stride (1, 4)" in text
    assert "Dims 0 and 1 cannot be merged" in text and "4·3 = 12" in text
    assert any("b.reshape(" in f for f in ex.fixes) and any("b.contiguous().view(" in f for f in ex.fixes)


def test_view_explanation_only_blames_dims_that_really_cannot_merge():
    t = torch.arange(24).view(2, 3, 4).permute(0, 2, 1)  # dims 0,1 mergeable? no; 1,2 no
    u = torch.arange(24).view(2, 3, 4)[:, :, :2]  # dims 0,1 mergeable? no (12 != 3*4... )
    for x in (t, u):
        msg = _raise(lambda x=x: x.view(-1))
        ex = _explain(msg, "y = x.view(-1)", 1, {"x": x})
        blamed = [p for p in ex.points if p.startswith("Dims")]
        for d in range(x.dim() - 1):
            merged = list(x.shape[:d]) + [x.shape[d] * x.shape[d + 1]] + list(x.shape[d + 2 :])
            try:
                x.view(merged)
                ok = True
            except RuntimeError:
                ok = False
            assert any(p.startswith(f"Dims {d} and {d + 1}") for p in blamed) == (not ok)


def test_inplace_on_leaf_requiring_grad():
    w = torch.ones(2, requires_grad=True)
    ex = _explain(_raise(lambda: w.add_(1)), "w.add_(1)", 1)
    assert "leaf" in ex.title and any("no_grad" in f for f in ex.fixes)


def test_stale_saved_tensor_names_node_and_versions():
    x = torch.ones(3, requires_grad=True)
    y = x.exp()
    y.add_(1)
    ex = _explain(_raise(lambda: y.sum().backward()), "y.sum().backward()", 1)
    text = " ".join(ex.points)
    assert "of Exp was saved" in text and "now 1" in text and "was 0" in text


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda: torch.ones(2, 3) + torch.ones(2, 4), "dimension 1"),
        (lambda: torch.ones(2, 3) @ torch.ones(4, 5), "inner sizes 3 and 4"),
        (lambda: torch.arange(6).view(4, 2), "6 elements"),
        (lambda: torch.ones(3, requires_grad=True).mul(2).backward(), "scalar"),
    ],
)
def test_shape_and_backward_mistakes_are_explained(make, needle):
    msg = _raise(make)
    ex = _explain(msg, "x", 1)
    assert ex is not None, msg
    assert needle in (ex.title + " " + " ".join(ex.points))


def test_unknown_errors_get_no_made_up_explanation():
    assert _explain("something else went wrong", "x", 1) is None
    assert explain(None, "", []) is None


def test_receiver_of_finds_the_viewed_expression():
    assert receiver_of("c = b.view(-1)  # comment", "view") == "b"
    assert receiver_of("c = d['k'].t().view(2, 3)", "view") == "d['k'].t()"
    assert receiver_of("not python (", "view") is None


def test_an_error_line_of_10000_terms_is_not_parsed():
    """Regression: a 10,000-term expression on the error line made ast.parse raise
    RecursionError inside explain (a 500 on the page)."""
    line = "c = " + "+".join(["b"] * 10_000) + ".view(-1)"
    assert receiver_of(line, "view") is None
    b = torch.arange(12).view(3, 4).t()
    ex = _explain(_raise(lambda: b.view(-1)), "import torch\n" + line, 2, {"b": b})
    assert ex.title.startswith("`the tensor.view(...)`")


def test_a_receiver_nested_past_the_recursion_limit_gives_none_instead_of_raising():
    line = "c = (" + "-" * 150 + "b).view(-1)"
    assert receiver_of(line, "view") == "-" * 150 + "b"
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(250)  # unparse of 150 nested operators now recurses too deep
    try:
        assert receiver_of(line, "view") is None
    finally:
        sys.setrecursionlimit(limit)
    assert receiver_of("c = b.view(-1)\x00", "view") is None  # a null byte: ValueError


def test_a_view_error_on_a_forged_geometry_skips_the_stride_arithmetic():
    """Strides of 4,000 digits would print products past str()'s digit limit (ValueError)."""
    b = torch.arange(12).view(3, 4).t()
    t = response_for({"b": b}).tensors[0].model_copy(update={"stride": [10**4000, 1]})
    ex = explain(
        RunError(type="RuntimeError", line=1, message=_raise(lambda: b.view(-1))), "c = b.view(-1)", [t]
    )
    assert ex is not None
    assert not any(p.startswith("Dims") for p in ex.points) and "b.reshape(...)" in ex.fixes[0]
