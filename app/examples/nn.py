"""nn lessons: Parameter registration, .data, init, Module vs functional, state_dict,
Dataset/DataLoader, ToTensor's layout change, and one optimizer step."""

from __future__ import annotations

from app.examples import StepClaim, lesson

EXAMPLES = [
    lesson(
        "parameters",
        "Parameter registration and order",
        "参数注册和顺序",
        "Order: the module's own Parameters first (scale), then each child's in declaration "
        "order (fc2 before fc1) - the note's 'declaration order' holds per module only. The "
        "plain tensor self.mask is not registered; the Modules panel calls it out.",
        """
        import torch
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc2 = nn.Linear(4, 2)                  # child declared first -> listed first
                self.fc1 = nn.Linear(3, 4)
                self.scale = nn.Parameter(torch.ones(1))    # own Parameter: listed before children
                self.mask = torch.ones(4)                   # a plain tensor: NOT registered

            def forward(self, x):
                return self.fc2(self.fc1(x)) * self.scale

        model = Net()
        print([name for name, _ in model.named_parameters()])   # scale, fc2.*, fc1.*
        """,
    ),
    lesson(
        "data",
        "parameter.data",
        "parameter.data",
        "w = conv.weight.data is the same memory as conv.weight but with requires_grad False; "
        "writing it changes the parameter behind autograd's back.",
        """
        import torch

        conv = torch.nn.Conv2d(1, 2, 3)
        w = conv.weight.data
        print(conv.weight.requires_grad, w.requires_grad)   # True False
        w[0].zero_()            # silently edits the parameter: autograd does not see it
        """,
    ),
    lesson(
        "init",
        "Parameter initialisation",
        "参数初始化",
        "nn.init.zeros_ zeroes lin.bias; normal_ under no_grad refills lin.weight in place "
        "(its version counter moves, it stays a leaf).",
        """
        import torch

        torch.manual_seed(0)
        lin = torch.nn.Linear(3, 2)
        torch.nn.init.zeros_(lin.bias)          # 1. nn.init (runs under no_grad for you)
        with torch.no_grad():
            lin.weight.normal_(0.0, 0.01)       # 2. an in-place tensor method, under no_grad
        print(lin.bias, lin.weight.is_leaf)
        """,
    ),
    lesson(
        "module-vs-functional",
        "nn.Module vs nn.functional",
        "nn.functional",
        "conv (a Module) owns weight and bias; F.conv1d needs them passed in. Same result.",
        """
        import torch
        import torch.nn.functional as F

        torch.manual_seed(0)
        conv = torch.nn.Conv1d(2, 4, 3)                 # the Module keeps its parameters
        x = torch.randn(1, 2, 8)
        y_module = conv(x)
        y_func = F.conv1d(x, conv.weight, conv.bias)    # the function takes them as inputs
        print(torch.equal(y_module, y_func))            # True
        """,
    ),
    lesson(
        "state-dict",
        "state_dict save / load round trip",
        "参数保存和读取",
        "sd = model.state_dict() shares memory with model's parameters (it is not a copy); "
        "the loaded model2 has equal values in its own storage.",
        """
        import io
        import torch

        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        sd = model.state_dict()            # references, not copies (see Shared storage)
        buf = io.BytesIO()                 # stands in for a file path
        torch.save({"model": sd, "opt": opt.state_dict()}, buf)
        buf.seek(0)
        checkpoint = torch.load(buf)
        model2 = torch.nn.Linear(3, 2)
        model2.load_state_dict(checkpoint["model"])
        model2.eval()
        print(torch.equal(model.weight, model2.weight))   # True
        """,
    ),
    lesson(
        "dataloader",
        "Dataset and DataLoader: dict samples stay dicts",
        "Dataset / Dataloader",
        "Each sample is a dict; the batch is a dict with the same keys and a new leading batch "
        "dim: batch['image'] is (4, 3, 4, 4).",
        """
        import torch
        from torch.utils.data import DataLoader, Dataset

        class Landmarks(Dataset):
            def __len__(self):
                return 6

            def __getitem__(self, i):
                return {"image": torch.full((3, 4, 4), float(i)),
                        "landmarks": torch.tensor([i, i + 1.0])}

        loader = DataLoader(Landmarks(), batch_size=4, shuffle=False)
        batch = next(iter(loader))
        print(type(batch).__name__, {k: tuple(v.shape) for k, v in batch.items()})
        """,
    ),
    lesson(
        "collate-copies",
        "DataLoader collate: a batch is new memory",
        "Dataset / Dataloader",
        "ds.tensors[0] is images itself (one storage), but xb, rows 0-1 stacked by default_collate, "
        "is new memory: zeroing it leaves the dataset as it was.",
        """
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        images = torch.arange(8.).reshape(4, 2)
        labels = torch.tensor([0, 1, 0, 1])
        ds = TensorDataset(images, labels)    # keeps the very tensors: ds.tensors[0] is images
        loader = DataLoader(ds, batch_size=2)
        xb, yb = next(iter(loader))           # default_collate stacks rows 0-1: a copy
        xb.zero_()
        print(images[0].tolist())             # [0.0, 1.0]: the dataset is untouched
        """,
    ),
    lesson(
        "collate-fn",
        "collate_fn: default_collate copies, a custom one decides",
        "collate_fn",
        "default_collate turned the numpy samples into one new float32 tensor (batch: its own "
        "storage); collate_fn=list hands over the samples themselves: raw[0] is rows[0], so a "
        "write through raw changes the dataset.",
        """
        import numpy as np
        import torch
        from torch.utils.data import DataLoader

        rows = [np.full(2, i, dtype=np.float32) for i in range(4)]   # a list is a Dataset too
        batch = next(iter(DataLoader(rows, batch_size=2)))            # numpy -> a new tensor
        raw = next(iter(DataLoader(rows, batch_size=2, collate_fn=list)))
        raw[0][0] = 100.0              # the very array rows[0]
        print(batch.shape, rows[0])
        """,
    ),
    lesson(
        "shuffle",
        "shuffle=True: a new order per epoch, not per batch",
        "sampler",
        "The note says shuffle re-orders at every batch; it draws one permutation each time the "
        "loader is iterated (an epoch): every sample exactly once per epoch, a new order the "
        "next time.",
        """
        import torch
        from torch.utils.data import DataLoader

        torch.manual_seed(0)
        loader = DataLoader(torch.arange(6), batch_size=2, shuffle=True)  # a tensor is a Dataset
        epoch1 = list(loader)   # iter(loader) draws one permutation: 3 batches of 2 ...
        epoch2 = list(loader)   # ... and the next epoch a new one
        print(torch.cat(epoch1).tolist())
        print(torch.cat(epoch2).tolist())
        print(torch.cat(epoch1).sort().values.tolist())   # each sample once: [0, 1, ..., 5]
        """,
    ),
    lesson(
        "to-tensor",
        "ToTensor: HWC uint8 -> CHW float in [0, 1]",
        "ToTensor",
        "t = from_numpy(img).permute(2, 0, 1) is a CHW view of img's memory (non-contiguous); "
        "x is what torchvision's ToTensor returns: float32, CHW, values / 255.",
        """
        import numpy as np
        import torch

        img = (np.arange(18, dtype=np.uint8) * 10).reshape(2, 3, 3)   # H=2, W=3, C=3
        t = torch.from_numpy(img).permute(2, 0, 1)   # HWC -> CHW: a view, strides permuted
        x = t.contiguous().float().div(255)          # = transforms.ToTensor()(img)
        print(x.shape, x.max().item())
        """,
    ),
    lesson(
        "eval-vs-no-grad",
        "model.eval() and no_grad() are different switches",
        "train and test",
        "Under no_grad a train-mode BatchNorm still writes its running stats (step 6: running_mean "
        "and running_var change with no version bump, the kernel writes them in place) and y1 gets "
        "no graph; after bn.eval() the stats stay put and y2 does get a graph.",
        """
        import torch
        import torch.nn as nn

        torch.manual_seed(0)
        bn = nn.BatchNorm1d(2)
        x = torch.randn(4, 2) * 3 + 5
        with torch.no_grad():
            y1 = bn(x)      # no graph, yet train mode still writes bn's running stats
        bn.eval()
        y2 = bn(x)          # eval mode reads the running stats and writes nothing; a graph is built
        print(bn.running_mean, bn.num_batches_tracked.item())
        """,
        steps=(
            StepClaim(6, "bn.running_mean", "values", unchanged=("version",)),
            StepClaim(6, "bn.running_var", "values", unchanged=("version",)),
            StepClaim(6, "y1", "added"),
        ),
    ),
    lesson(
        "train-step",
        "One training step with an optimizer",
        "pytorch 训练代码参考",
        "After zero_grad / backward / step: parameters have .grad, opt holds a momentum_buffer "
        "per parameter, and loss's graph ends in NllLossBackward0.",
        """
        import torch

        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        criterion = torch.nn.CrossEntropyLoss()
        inputs, labels = torch.randn(5, 4), torch.tensor([0, 1, 2, 1, 0])

        model.train()
        opt.zero_grad()                  # once per batch
        output = model(inputs)
        loss = criterion(output, labels)
        loss.backward()
        opt.step()
        print(f"loss {loss.item():.4f}")
        """,
        graph_focus="NllLossBackward0",
    ),
]
