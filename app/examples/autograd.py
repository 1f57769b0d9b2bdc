"""Autograd lessons: leaves and .grad, backward(gradient), grad modes, accumulation,
custom Functions, and the stale-saved-tensor error."""

from __future__ import annotations

from app.examples import StepClaim, lesson

EXAMPLES = [
    lesson(
        "leaf-grad",
        "requires_grad, grad_fn, leaves and .grad",
        "tensor 的 attrib",
        "x is a leaf with x.grad; y = x * 2 has grad_fn MulBackward0 and no .grad (the note's "
        "question: only leaves keep .grad, unless you call retain_grad()); z kept its grad.",
        """
        import torch

        x = torch.ones(3, requires_grad=True)   # a leaf: created by you
        y = x * 2                               # not a leaf: grad_fn = MulBackward0
        z = x * 3
        z.retain_grad()                         # ask a non-leaf to keep its .grad
        out = (y + z).sum()
        out.backward()
        print(x.grad)                           # tensor([5., 5., 5.])
        """,
    ),
    lesson(
        "backward-gradient",
        "backward() with a gradient argument",
        "autograd: out.backward(do)",
        "y is not a scalar, so y.backward(v) needs v = dloss/dy; x.grad = v * 2x.",
        """
        import torch

        x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x ** 2                            # non-scalar output
        v = torch.tensor([1.0, 0.1, 0.01])    # gradient of a later loss w.r.t. y
        y.backward(v)                         # vector-Jacobian product
        print(x.grad)                         # tensor([2.0000, 0.4000, 0.0600])
        """,
    ),
    lesson(
        "grad-modes",
        "no_grad / enable_grad / set_grad_enabled",
        "解除记录梯度的方法",
        "a, c and d have no grad_fn (no graph recorded); b and e have MulBackward0.",
        """
        import torch

        x = torch.ones(2, requires_grad=True)
        with torch.no_grad():
            a = x * 2                 # not recorded
            with torch.enable_grad():
                b = x * 2             # recorded again inside enable_grad
        torch.set_grad_enabled(False)
        c = x * 2                     # not recorded
        torch.set_grad_enabled(True)
        d = x.detach() * 2            # detach(): cut from the graph
        e = x * 2                     # recorded
        print(a.requires_grad, b.requires_grad, c.requires_grad, e.requires_grad)
        """,
    ),
    lesson(
        "grad-accumulation",
        "Gradients accumulate: zero them per batch",
        "梯度清零",
        "Three backward() calls add up: g_before = 9 = 3 + 3 + 3; after zero_() w.grad is 0.",
        """
        import torch

        w = torch.tensor([1.0, 2.0], requires_grad=True)
        for step in range(3):
            loss = (w * 3).sum()
            loss.backward()
            print(step, w.grad.tolist())    # 3, 6, 9: backward ADDS to .grad
        g_before = w.grad.clone()
        w.grad.zero_()    # what optimizer.zero_grad() does - once per batch, not per epoch
        """,
    ),
    lesson(
        "custom-function",
        "A custom autograd.Function",
        "autograd.Function",
        "y's grad_fn is SumFunctionBackward (a custom node in the graph); x.grad is the 0.8 "
        "its backward returns, not the true gradient 1.",
        """
        import torch
        from torch.autograd import Function

        class SumFunction(Function):
            @staticmethod
            def forward(ctx, input):
                ctx.save_for_backward(input)
                return input.sum()

            @staticmethod
            def backward(ctx, grad_output):
                input, = ctx.saved_tensors
                return torch.ones_like(input) * 0.8   # deliberately not the true gradient

        x = torch.ones(3, requires_grad=True)
        y = SumFunction.apply(x)
        y.backward(retain_graph=True)
        print(x.grad)                                 # tensor([0.8000, 0.8000, 0.8000])
        """,
        graph_focus="SumFunctionBackward",
    ),
    lesson(
        "stale-saved",
        "A saved tensor modified in place",
        "运算 in-place",
        "exp() saves its output y; y.add_(1) bumps y's version, so backward fails and the "
        "graph shows the stale saved tensor in red.",
        """
        import torch

        x = torch.ones(3, requires_grad=True)
        y = x.exp()         # ExpBackward0 saves its result y for backward
        y.add_(1)           # in place: y's version 0 -> 1, the saved y is now stale
        y.sum().backward()  # RuntimeError: ... modified by an inplace operation
        """,
    ),
    lesson(
        "detach-vs-data",
        "detach() shares memory and the version counter; .data does not count",
        "解除记录梯度的方法: x.detach()",
        "The note lists detach() as a way to stop recording gradients. It is, but d = y.detach() "
        "is y's memory with y's version counter: d.mul_(2) moves y to v1 and backward refuses "
        "(the caught step). y2.data.mul_(2) writes the same way without moving y2's counter, "
        "so backward runs on the doubled values: x.grad is 2e, not e.",
        """
        import torch

        x = torch.ones(3, requires_grad=True)
        y = x.exp()               # ExpBackward0 saves its output y
        d = y.detach()            # no graph, but y's memory AND y's version counter
        d.mul_(2)                 # y is doubled too, and y's version moves 0 -> 1
        try:
            y.sum().backward()    # autograd sees the saved y changed
        except RuntimeError as err:
            print("detach:", str(err)[:58])
        y2 = x.exp()
        y2.data.mul_(2)           # .data: same memory, its own counter: y2 stays v0
        y2.sum().backward()       # runs, on the doubled y2: a silently wrong gradient
        print(x.grad)             # tensor([5.4366, 5.4366, 5.4366]) = 2e, the truth is e
        """,
        steps=(
            StepClaim(5, "y", "version"),
            StepClaim(9, "y2", "values", unchanged=("version",)),
        ),
    ),
]
