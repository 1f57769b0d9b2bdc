"""Tool lessons: a tqdm progress bar over a DataLoader, and a PIL image turned into a tensor the
way torchvision's ToTensor does it (torchvision itself is not in the image: see the README)."""

from __future__ import annotations

from app.examples import lesson

EXAMPLES = [
    lesson(
        "tqdm-loader",
        "A tqdm progress bar over a DataLoader",
        "tqdm",
        "tqdm wraps the loader and redraws one stderr line with '\\r' at each batch; the output "
        "panel shows what a terminal would: only the last redraw, 4/4. len(loader) = 64 / 16 "
        "batches is how tqdm knows the total; xb is the last batch, shape (16, 3).",
        """
        import torch
        from torch.utils.data import DataLoader, TensorDataset
        from tqdm import tqdm

        torch.manual_seed(0)
        ds = TensorDataset(torch.randn(64, 3), torch.randn(64, 1))
        loader = DataLoader(ds, batch_size=16)          # len(loader) == 4: tqdm's total
        model = torch.nn.Linear(3, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)

        # The bar goes to stderr. mininterval=0: redrawn at every batch; the format leaves out
        # the timings (it/s), so every run prints the same bars.
        bar = tqdm(loader, desc="epoch 1", mininterval=0, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt}")
        for xb, yb in bar:
            loss = torch.nn.functional.mse_loss(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"last loss {loss.item():.3f}")
        """,
    ),
    lesson(
        "pil-to-tensor",
        "A PIL image -> CHW float tensor (ToTensor by hand)",
        "PIL + ToTensor",
        "a is the image's pixels, HWC uint8; t = from_numpy(a) shares a's memory (one storage in "
        "the Shared storage panel: a[0, 0, 0] = 255 shows in t); permute(2, 0, 1) is a CHW view "
        "with strides (1, 9, 3), not contiguous; x = t.float() / 255 is new float32 memory that keeps "
        "those strides (elementwise ops preserve the layout; ToTensor adds .contiguous()).",
        """
        import numpy as np
        import torch
        from PIL import Image

        pixels = (np.arange(18, dtype=np.uint8) * 10).reshape(2, 3, 3)   # H=2, W=3, C=3
        img = Image.fromarray(pixels)    # uint8 H x W x 3: an RGB image
        print(img.size, img.mode)       # PIL says (W, H): (3, 2) RGB

        a = np.array(img)               # np.asarray(img) is read-only: from_numpy would warn
        t = torch.from_numpy(a).permute(2, 0, 1)    # HWC -> CHW: a view, no copy
        a[0, 0, 0] = 255                # a write through a shows in t: one memory
        print(t[0, 0, 0].item(), t.stride(), t.is_contiguous())   # 255 (1, 9, 3) False
        x = t.float() / 255             # ToTensor's values: CHW float32 in [0, 1]
        print(x.shape, x.dtype, x.max().item())
        """,
    ),
]
