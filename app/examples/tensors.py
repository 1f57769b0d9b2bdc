"""Tensor lessons: numpy sharing, in-place ops, view/reshape/flatten, squeeze, dtypes."""

from __future__ import annotations

from app.examples import lesson

EXAMPLES = [
    lesson(
        "numpy-sharing",
        "numpy ⇄ tensor share memory",
        "Tensor: tenor <--> numpy",
        "t, a and b are one storage (Shared storage panel); c = torch.tensor(a) is a copy.",
        """
        import numpy as np
        import torch

        a = np.arange(6, dtype=np.float32)
        t = torch.from_numpy(a)   # no copy: t reads a's memory
        b = t.numpy()             # and back: still the same memory
        t[0] = 100.0              # a write through one name ...
        print(a[0], b[0])         # ... shows in the others: 100.0 100.0
        c = torch.tensor(a)       # torch.tensor() always copies
        """,
    ),
    lesson(
        "inplace",
        "In-place ops end in _",
        "运算 in-place: x.t_()",
        "x.add_ / x.t_ change x itself (version counter 2, strides swapped); y = x.add(1) is new.",
        """
        import torch

        x = torch.ones(2, 3)
        y = x.add(1)      # out of place: a new tensor, x unchanged
        x.add_(1)         # in place: the trailing _ means "modify x" (version 0 -> 1)
        x.t_()            # in-place transpose: same storage, shape (3, 2), stride (1, 3)
        print(x.shape, x.stride(), x._version)
        """,
    ),
    lesson(
        "view-shares",
        "view() shares storage",
        "view()",
        "x, v and w are the same bytes: writing w[0, 0] changes x[0].",
        """
        import torch

        x = torch.arange(12)
        v = x.view(3, 4)      # new shape, same memory
        w = v.view(2, 6)
        w[0, 0] = -1          # writes through every view
        print(x[0].item())    # -1
        """,
    ),
    lesson(
        "view-non-contiguous",
        "view() fails on a non-contiguous tensor",
        "contiguous",
        "b = a.t() has stride (1, 4); b.view(-1) raises, and the error explains which dims cannot be merged.",
        """
        import torch

        a = torch.arange(12).view(3, 4)
        b = a.t()                 # transposed: stride (1, 4), not contiguous
        print(b.is_contiguous())  # False
        c = b.view(-1)            # RuntimeError: use .reshape() or .contiguous().view()
        """,
    ),
    lesson(
        "reshape-copy",
        "flatten/reshape copy only when needed",
        "flatten / reshape",
        "r1 = a.reshape(12) shares a's storage (no copy); r2 = b.reshape(12) and f = b.flatten() "
        "of the transposed b get their own storage. The note says reshape does a 'deepcopy': it "
        "copies the data only, and only when a view is impossible.",
        """
        import torch

        a = torch.arange(12).view(3, 4)
        r1 = a.reshape(12)   # a is contiguous: reshape returns a VIEW (same storage)
        b = a.t()
        r2 = b.reshape(12)   # b is not: reshape must copy the data
        f = b.flatten()      # flatten = reshape(-1): a copy here too
        b[0, 0] = -1
        print(r1[0].item(), r2[0].item(), f[0].item())   # -1 0 0
        """,
    ),
    lesson(
        "squeeze",
        "squeeze / unsqueeze",
        "squeeze/unsqueeze",
        "All four are views of x. unsqueeze(dim) counts dims from 0 (the note says from 1): "
        "dim=0 prepends, dim=1 inserts after the first dim.",
        """
        import torch

        x = torch.zeros(3, 1, 5)
        s = x.squeeze()        # (3, 5): every size-1 dim removed
        u0 = s.unsqueeze(0)    # (1, 3, 5)
        u1 = s.unsqueeze(1)    # (3, 1, 5): dim is 0-based
        print(s.shape, u0.shape, u1.shape)
        """,
    ),
    lesson(
        "dtypes",
        "dtypes and .to()",
        "dtype / cuda tensor",
        "d = x.to(float64) is new 8-byte memory; same = x.to(float32) is x itself (an alias); "
        "i = x.view(torch.int32) reinterprets x's bytes (a dtype view, same storage).",
        """
        import torch

        x = torch.arange(4, dtype=torch.float32)
        d = x.to(torch.float64)     # new dtype: a copy with 8 bytes per element
        same = x.to(torch.float32)  # already float32: .to() returns x itself
        h = x.half()                # float16: 2 bytes per element
        i = x.view(torch.int32)     # same bytes read as int32 (a dtype view)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        g = x.to(device)            # on a CPU-only box this is x again
        print(same is x, i[1].item())   # True 1065353216 (the bits of 1.0)
        """,
    ),
    lesson(
        "expand",
        "expand: stride 0",
        "view()",
        "grid has stride (0, 1): its 12 elements read only 3 storage cells (×4 each).",
        """
        import torch

        row = torch.arange(3.)
        grid = row.expand(4, 3)    # no copy: the row is re-read with stride 0
        print(grid.stride(), grid.is_contiguous())
        """,
    ),
]
