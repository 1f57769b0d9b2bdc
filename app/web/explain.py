"""Plain-language explanations for the errors learners hit most, built from the error message,
the offending source line and the snapshot (so a ``view`` error can name the dims that
cannot be merged given the tensor's real strides)."""

from __future__ import annotations

import ast
import re

from app.schemas import RunError, TensorInfo
from app.web.explain_limits import LIMIT_TYPES, Limits, configured_limits, explain_limit
from app.web.explanation import Explanation
from app.web.shapes import shape_text
from app.web.strides import mergeable_dims, undrawable

# The line is parsed to find `x` in `x.view(...)`: no line a learner writes is longer, and a
# 10,000-term expression made ast.parse raise RecursionError.
LINE_PARSE_MAX_CHARS = 400
MESSAGE_MAX_CHARS = 4096  # of the error message, matched against the known errors


__all__ = ["Explanation", "Limits", "explain", "receiver_of"]


def explain(
    error: RunError | None, code: str, tensors: list[TensorInfo], limits: Limits | None = None
) -> Explanation | None:
    """`limits`: the server's (Settings); by default those this process's environment sets."""
    if error is None:
        return None
    msg = error.message[:MESSAGE_MAX_CHARS]
    if error.type in LIMIT_TYPES:
        return explain_limit(error, msg, limits or configured_limits())
    line = _source_line(code, error.line)
    by_name = {t.name: t for t in tensors} | {a: t for t in tensors for a in t.aliases}
    for matcher in (
        _view,
        _leaf_inplace,
        _stale,
        _broadcast,
        _matmul,
        _bad_shape,
        _scalar_backward,
        _second_backward,
        _no_grad_fn,
    ):
        found = matcher(msg, line, by_name)
        if found is not None:
            return found
    return None


def _source_line(code: str, line: int | None) -> str:
    lines = code.splitlines()
    return lines[line - 1] if line and 0 < line <= len(lines) else ""


def receiver_of(line: str, method: str) -> str | None:
    """The expression ``x`` in ``... x.view(...)`` on that line, as source text."""
    source = line.strip()
    if len(source) > LINE_PARSE_MAX_CHARS:
        return None
    try:
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == method
            ):
                return ast.unparse(node.func.value)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        # ValueError: a null byte; RecursionError: deep nesting, in the parser or in unparse.
        return None
    return None


_fmt = shape_text  # the page's one shape format (app.web.shapes)


def _view(msg, line, by_name) -> Explanation | None:
    if "view size is not compatible with input tensor's size and stride" not in msg:
        return None
    name = receiver_of(line, "view") or "the tensor"
    ex = Explanation(f"`{name}.view(...)` needs memory it can walk with one stride per new dim")
    t = by_name.get(name)
    # Only a geometry torch could have: the products below print digits of claimed ints.
    if t is not None and t.stride is not None and undrawable(t.shape, t.stride, 0) is None:
        ex.points.append(
            f"{name} has shape {_fmt(t.shape)} and stride {_fmt(t.stride)}"
            f" (is_contiguous = {t.is_contiguous})."
        )
        for d, ok in enumerate(mergeable_dims(t.shape, t.stride)):
            if not ok:
                ex.points.append(
                    f"Dims {d} and {d + 1} cannot be merged: merging needs stride[{d}] = "
                    f"stride[{d + 1}]·size[{d + 1}] = {t.stride[d + 1]}·{t.shape[d + 1]} = "
                    f"{t.stride[d + 1] * t.shape[d + 1]}, but stride[{d}] is {t.stride[d]}."
                )
    ex.points.append("view never copies, so it fails instead. The Strides panel shows the jumps.")
    ex.fixes += [
        f"{name}.reshape(...)  # a view when possible, otherwise a copy",
        f"{name}.contiguous().view(...)  # copy into row-major order first",
    ]
    return ex


def _leaf_inplace(msg, line, by_name) -> Explanation | None:
    if "leaf Variable that requires grad is being used in an in-place operation" not in msg:
        return None
    return Explanation(
        "In-place change of a leaf tensor that requires grad",
        [
            "Autograd records how every tensor was made from its leaves; a leaf that requires grad "
            "has no history, so overwriting it in place would make its gradient meaningless.",
            "Initialising or updating parameters is not something autograd should record.",
        ],
        [
            "with torch.no_grad():\n    w.add_(1)  # e.g. a manual update step",
            "w = w + 1  # out of place: w becomes a new non-leaf tensor",
        ],
    )


def _stale(msg, line, by_name) -> Explanation | None:
    if "modified by an inplace operation" not in msg:
        return None
    m = re.search(r"output (\d+) of (\w+), is at version (\d+); expected version (\d+)", msg)
    points = [
        "A backward node saved a tensor for later and the tensor was then changed in place, "
        "so the saved value is stale and the gradient would be wrong."
    ]
    if m:
        points.append(
            f"Output {m.group(1)} of {m.group(2)} was saved for its backward "
            f"({m.group(2)}Backward): its version counter is now {m.group(3)}, but it "
            f"was {m.group(4)} when saved. The stale node is red in the Autograd panel."
        )
    return Explanation(
        "A tensor saved for backward was modified in place",
        points,
        ["y = y * 2  # instead of y *= 2 / y.mul_(2) after y was used", "y2 = y.clone(); y2.mul_(2)"],
    )


def _broadcast(msg, line, by_name) -> Explanation | None:
    m = re.search(
        r"size of tensor a \((\d+)\) must match the size of tensor b \((\d+)\) "
        r"at non-singleton dimension (\d+)",
        msg,
    )
    if not m:
        return None
    a, b, d = m.groups()
    return Explanation(
        "Shapes do not broadcast",
        [
            f"Broadcasting lines shapes up from the right. At dimension {d} one side has {a} and the "
            f"other {b}; sizes must be equal or one of them must be 1."
        ],
        [
            "b.unsqueeze(0)  # add a size-1 dim where the sizes should broadcast",
            "a.reshape(...) / a.t()  # or make the sizes agree",
        ],
    )


def _matmul(msg, line, by_name) -> Explanation | None:
    m = re.search(r"mat1 and mat2 shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)", msg)
    if not m:
        return None
    r1, c1, r2, c2 = m.groups()
    return Explanation(
        "Matrix shapes do not chain",
        [
            f"({r1}×{c1}) @ ({r2}×{c2}): the inner sizes {c1} and {r2} must be equal.",
            "For nn.Linear(in, out) the input's last dim must be `in`.",
        ],
        ["b.t()  # if the second matrix is the wrong way round"],
    )


def _bad_shape(msg, line, by_name) -> Explanation | None:
    m = re.search(r"shape '\[([\d, -]*)\]' is invalid for input of size (\d+)", msg)
    if not m:
        return None
    return Explanation(
        "The new shape has a different number of elements",
        [
            f"The input has {m.group(2)} elements; the product of [{m.group(1)}] must equal it "
            "(one -1 may stand for the size that makes it fit)."
        ],
        ["x.view(-1, k)  # let torch infer one dim"],
    )


def _scalar_backward(msg, line, by_name) -> Explanation | None:
    if "grad can be implicitly created only for scalar outputs" not in msg:
        return None
    return Explanation(
        "backward() without an argument needs a scalar",
        [
            "For a non-scalar output y, backward needs the gradient of the final loss with respect "
            "to y (same shape as y): it computes the vector-Jacobian product."
        ],
        ["y.backward(torch.ones_like(y))", "y.sum().backward()"],
    )


def _second_backward(msg, line, by_name) -> Explanation | None:
    if "backward through the graph a second time" not in msg:
        return None
    return Explanation(
        "The graph's saved tensors were freed by the first backward",
        ["After backward, nodes free what they saved (see 'freed' in the Autograd panel)."],
        ["loss.backward(retain_graph=True)  # only if you really need two passes"],
    )


def _no_grad_fn(msg, line, by_name) -> Explanation | None:
    if "does not require grad and does not have a grad_fn" not in msg:
        return None
    return Explanation(
        "Nothing to differentiate",
        [
            "The tensor was not built from any tensor with requires_grad=True (or it was built "
            "under torch.no_grad()), so it has no grad_fn."
        ],
        ["x = torch.ones(3, requires_grad=True)"],
    )
