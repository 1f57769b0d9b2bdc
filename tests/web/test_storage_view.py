import numpy as np
import torch

from app.web import storage_view
from tests.web.pagekit import response_for


def _verdicts(namespace):
    resp = response_for(namespace)
    index = {n: i for i, n in enumerate([t.name for t in resp.tensors] + [a.name for a in resp.arrays])}
    return resp, index, {v.name: v for v in storage_view.verdicts(resp, index)}


def test_from_numpy_shares_and_torch_tensor_copies():
    a = np.arange(6, dtype=np.float32)
    t = torch.from_numpy(a)
    c = torch.tensor(a)
    _, _, v = _verdicts({"a": a, "t": t, "c": c})
    assert v["t"].shared and "a" in v["t"].text
    assert v["a"].shared and "t" in v["a"].text
    assert not v["c"].shared and "own memory" in v["c"].text


def test_view_names_its_base():
    x = torch.arange(12)
    v2 = x.view(3, 4)
    _, _, v = _verdicts({"x": x, "v2": v2})
    assert v["v2"].text.startswith("view of x")


def test_transposed_view_shares_and_reshape_copy_is_own_memory():
    a = torch.arange(12).view(3, 4)
    b = a.t()
    r = b.reshape(12)
    _, _, v = _verdicts({"a": a, "b": b, "r": r})
    # b._base is the unnamed arange behind a, so the verdict says "view" and names a.
    assert v["b"].text.startswith("a view; same bytes as a")
    assert not v["r"].shared


def test_disjoint_slices_share_storage_but_not_bytes():
    x = torch.arange(10)
    lo, hi = x[:5], x[5:]
    _, _, v = _verdicts({"lo": lo, "hi": hi, "x": x})
    assert "same storage as hi (other bytes)" in v["lo"].text
    assert "overlaps lo, hi" in v["x"].text or "overlaps hi, lo" in v["x"].text


def test_bars_are_scaled_to_byte_ranges():
    x = torch.arange(8, dtype=torch.float32)
    tail = x[4:]
    resp, index, _ = _verdicts({"x": x, "tail": tail})
    (strip,), hidden = storage_view.strips(resp.storages, index)
    bars = {b.name: b for b in strip.bars}
    assert hidden == 0 and strip.nbytes == 32
    assert bars["x"].w == storage_view.BAR_W
    assert bars["tail"].x == storage_view.NAME_W + storage_view.BAR_W / 2
    assert bars["tail"].idx == index["tail"]
