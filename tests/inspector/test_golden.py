"""Golden snapshots of the lessons the product teaches.

Goldens live in tests/inspector/golden/<lesson>.json and are compared exactly
(addresses never appear: storage ranges are group-relative). After an
intended format change, regenerate and review the diff:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/inspector/test_golden.py

Each lesson also asserts its teaching point directly, so a wrongly
regenerated golden cannot hide a regression.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from app.inspector import snapshot

from .helpers import by_name, run_snippet, snippet_line, storage_of

GOLDEN_DIR = Path(__file__).parent / "golden"

LESSONS = {
    "01_transpose_view": """\
x = torch.arange(6.).reshape(2, 3)
y = x.t()
""",
    "02_view_stride_error": """\
x = torch.arange(6.).reshape(2, 3)
y = x.t()
z = y.view(-1)
""",
    "03_flatten_reshape_copy": """\
x = torch.arange(6.).reshape(2, 3)
f = x.flatten()
r = x.reshape(-1)
t = x.t()
tf = t.flatten()
tr = t.reshape(-1)
""",
    "04_numpy_shares_memory": """\
a = torch.arange(6.)
n = a.numpy()
b = torch.from_numpy(n)
tail = torch.from_numpy(a.numpy()[2:])
bits = a.view(torch.int32)
n[0] = 100.0
""",
    "05_backward_fills_grad": """\
x = torch.ones(3, requires_grad=True)
y = (x * x).sum()
y.backward()
""",
    "06_no_grad": """\
x = torch.ones(3, requires_grad=True)
with torch.no_grad():
    y = x * 2
""",
    "07_custom_function": """\
class MyRelu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * (a > 0)

x = torch.tensor([-1.0, 2.0], requires_grad=True)
y = MyRelu.apply(x)
""",
    "08_parameter_vs_tensor_attr": """\
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(3))
        self.v = torch.randn(3)

torch.manual_seed(0)
model = Net()
""",
    "09_dataloader_dict_batch": """\
from torch.utils.data import DataLoader, Dataset

class Pairs(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return {'image': torch.full((2, 2), float(i)), 'label': i}

loader = DataLoader(Pairs(), batch_size=2)
batch = next(iter(loader))
""",
    "10_dataloader_collate_copies": """\
from torch.utils.data import DataLoader, TensorDataset

images = torch.arange(8.).reshape(4, 2)
ds = TensorDataset(images, torch.tensor([0, 1, 0, 1]))
xb, yb = next(iter(DataLoader(ds, batch_size=2)))
""",
}


def lesson_snapshot(lesson: str) -> tuple[dict, BaseException | None]:
    namespace, exc = run_snippet(LESSONS[lesson])
    return snapshot(namespace), exc


@pytest.mark.parametrize("lesson", sorted(LESSONS))
def test_golden(lesson):
    snap, _ = lesson_snapshot(lesson)
    actual = json.loads(json.dumps(snap, allow_nan=False))
    path = GOLDEN_DIR / f"{lesson}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(actual, indent=1, allow_nan=False) + "\n")
    assert path.exists(), f"missing golden {path.name}; run with UPDATE_GOLDEN=1"
    assert actual == json.loads(path.read_text())


def test_lesson1_transpose_is_a_noncontiguous_view_of_the_same_storage():
    s, _ = lesson_snapshot("01_transpose_view")
    y = by_name(s["tensors"], "y")
    assert y["is_contiguous"] is False and y["stride"] == [1, 3] and y["is_view"] is True
    # ._base is the unnamed arange() both x and y view, not x: reported honestly as null
    assert y["base"] is None
    assert storage_of(s, "x") == storage_of(s, "y")


def test_lesson2_view_on_transposed_fails_on_line_3_and_keeps_earlier_names():
    s, exc = lesson_snapshot("02_view_stride_error")
    assert isinstance(exc, RuntimeError)
    assert "view size is not compatible" in str(exc)
    assert snippet_line(exc) == 3
    assert [t["name"] for t in s["tensors"]] == ["x", "y"]


def test_lesson3_reshape_copies_only_when_needed():
    s, _ = lesson_snapshot("03_flatten_reshape_copy")
    x = storage_of(s, "x")
    assert storage_of(s, "f") == storage_of(s, "r") == storage_of(s, "t") == x
    assert len({x, storage_of(s, "tf"), storage_of(s, "tr")}) == 3


def test_lesson4_numpy_round_trips_share_one_group():
    s, _ = lesson_snapshot("04_numpy_shares_memory")
    assert len(s["storages"]) == 1
    assert {m["name"] for m in s["storages"][0]["members"]} == {"a", "b", "tail", "bits", "n"}
    assert by_name(s["tensors"], "a")["preview"]["values"][0] == 100.0  # write through n
    assert by_name(s["tensors"], "tail")["byte_range"] == [8, 24]


def test_lesson5_backward_fills_leaf_grad_and_frees_saved():
    s, _ = lesson_snapshot("05_backward_fills_grad")
    assert by_name(s["tensors"], "x")["grad"] == "x.grad"
    assert by_name(s["tensors"], "x.grad")["preview"]["values"] == [2.0, 2.0, 2.0]
    mul = by_name(s["graph"]["nodes"], "MulBackward0")
    assert mul["saved"] and all(e["freed"] for e in mul["saved"])


def test_lesson6_no_grad_has_no_graph():
    s, _ = lesson_snapshot("06_no_grad")
    assert s["graph"]["nodes"] == [] and by_name(s["tensors"], "y")["grad_fn"] is None


def test_lesson7_custom_function_node_is_named():
    s, _ = lesson_snapshot("07_custom_function")
    node = by_name(s["graph"]["nodes"], "MyReluBackward")
    assert node["tensors"] == ["y"] and node["saved"][0]["tensor"] == "x"


def test_lesson8_parameter_registered_plain_tensor_not():
    s, _ = lesson_snapshot("08_parameter_vs_tensor_attr")
    model = by_name(s["modules"], "model")
    assert [p["name"] for p in model["parameters"]] == ["w"]
    assert [u["name"] for u in model["unregistered"]] == ["v"]
    assert model["state_dict_keys"] == ["w"]


def test_lesson9_dataloader_batch_keeps_dict_keys():
    s, _ = lesson_snapshot("09_dataloader_dict_batch")
    assert [t["name"] for t in s["tensors"]] == ["batch['image']", "batch['label']"]
    assert by_name(s["tensors"], "batch['image']")["shape"] == [2, 2, 2]
    assert by_name(s["tensors"], "batch['label']")["dtype"] == "torch.int64"


def test_lesson10_collate_stacks_into_new_memory_and_the_dataset_keeps_its_tensors():
    s, _ = lesson_snapshot("10_dataloader_collate_copies")
    assert by_name(s["tensors"], "images")["aliases"] == ["ds.tensors[0]"]
    assert storage_of(s, "xb") != storage_of(s, "images")
    assert [t["name"] for t in s["tensors"]] == ["images", "xb", "yb", "ds.tensors[1]"]
