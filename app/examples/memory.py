"""Memory lessons (issue #18): what holds the bytes. A view keeping a whole storage alive and
.clone() letting it go; autograd keeping intermediates until backward(); Adam's state doubling
the parameters' memory at its first step(); zero_grad() freeing the gradients; and a small CNN's
call tree. The Memory panel, the memory-over-steps chart and the Calls panel show each claim.

Sizes are chosen to read well in the panels (4 MB, 4 KB) and to run well within the default
limits; the numbers in the claims are worked out by hand (float32: 4 bytes an element)."""

from __future__ import annotations

from app.examples import StepClaim, lesson

EXAMPLES = [
    lesson(
        "memory-view-pins",
        "A view keeps its whole storage alive",
        "Memory: views and clone()",
        "After del big, row still keeps all 4 MB of big's storage alive and uses 4 KB of it "
        "(the Memory panel says so under 'Kept alive by views'). first took its row with "
        ".clone(): it owns 4 KB, and the 4 MB tensor it came from was freed at once.",
        """
        import torch

        big = torch.zeros(1000, 1000)                 # 4,000,000 bytes
        row = big[0]                                  # a view: 4,000 bytes of big's storage
        del big                                       # the name goes; row keeps all 4 MB alive
        first = torch.ones(1000, 1000)[0].clone()     # a copy of 4 KB: the 4 MB are freed
        """,
    ),
    lesson(
        "memory-saved-for-backward",
        "Autograd keeps intermediates until backward()",
        "Memory: what autograd saves",
        "loss = ... saves exp's and sigmoid's results for backward: 8 MB no name holds (the "
        "chart's 'saved for backward' at step 4). backward() frees them and fills x.grad "
        "(4 MB of gradients) at step 5.",
        """
        import torch

        torch.manual_seed(0)
        x = torch.randn(1000, 1000, requires_grad=True)   # 4 MB
        loss = (x.exp() * 2).sigmoid().sum()              # saves exp's and sigmoid's outputs
        loss.backward()                                    # frees them; x.grad is 4 MB
        """,
        steps=(StepClaim(4, "loss", "added"), StepClaim(5, "x", "grad")),
    ),
    lesson(
        "memory-adam-state",
        "Adam's state doubles the parameters' memory",
        "Memory: optimizer state",
        "model's parameters are 4,004,000 bytes; backward() adds as many in gradients; Adam's "
        "first step() (step 7) creates exp_avg and exp_avg_sq for each: 8,008,000 bytes of "
        "optimizer state, twice the parameters (plus 4 bytes for each one's step counter).",
        """
        import torch

        torch.manual_seed(0)
        model = torch.nn.Linear(1000, 1000)          # 1,001,000 parameters: 4,004,000 bytes
        opt = torch.optim.Adam(model.parameters())
        loss = model(torch.randn(1, 1000)).sum()
        loss.backward()                               # gradients: 4,004,000 bytes
        opt.step()                                    # exp_avg + exp_avg_sq: 8,008,000 bytes
        """,
        steps=(StepClaim(6, "model.weight", "grad"), StepClaim(7, "model.weight", "version")),
    ),
    lesson(
        "memory-zero-grad",
        "zero_grad() frees the gradients",
        "Memory: zero_grad(set_to_none=True)",
        "Each backward() (the first at step 6) creates 1 MB of gradients and each zero_grad() frees them "
        "again (set_to_none=True, the default since torch 2.0): the chart's gradients band comes "
        "and goes with every iteration, and at the end no .grad is left.",
        """
        import torch

        torch.manual_seed(0)
        model = torch.nn.Linear(500, 500)             # 1,002,000 bytes of parameters
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(3):
            loss = model(torch.randn(8, 500)).pow(2).mean()
            loss.backward()                           # gradients: 1,002,000 bytes
            opt.step()
            opt.zero_grad()                           # .grad = None: the bytes are freed
        """,
        steps=(StepClaim(6, "model.weight", "grad"),),
    ),
    lesson(
        "memory-cnn-calls",
        "A small CNN's call tree",
        "Memory: module calls",
        "The Calls panel lists model's forward and each layer's inside it, with output shapes "
        "from (2, 8, 26, 26) after the first Conv2d to (2, 10) after the Linear, and a total of "
        "1,418 parameters (80 + 1,168 + 170), as torchinfo's summary says.",
        """
        import torch
        import torch.nn as nn

        torch.manual_seed(0)
        model = nn.Sequential(
            nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2),           # (2, 8, 13, 13)
            nn.Conv2d(8, 16, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),  # (2, 16, 1, 1)
            nn.Flatten(), nn.Linear(16, 10),                          # (2, 10)
        )
        x = torch.randn(2, 1, 28, 28)
        logits = model(x)
        """,
    ),
]
