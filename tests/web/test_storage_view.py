import random
import time
from types import SimpleNamespace
from typing import cast

import numpy as np
import pytest
import torch

from app.schemas import RunResponse, StorageInfo, StorageMember
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


def _reference_text(name, group_members, rng):
    """The verdict text as the first version computed it (three scans of the members), kept
    here as the oracle for the indexed one on groups small enough for it."""
    others = [m for m in group_members if m.name != name]
    if not others:
        return "own memory - no other variable shares it"
    same = [m.name for m in others if rng is not None and m.byte_range == rng]
    overlap = [
        m.name
        for m in others
        if m.name not in same and rng is not None and rng[0] < m.byte_range[1] and m.byte_range[0] < rng[1]
    ]
    apart = [m.name for m in others if m.name not in same and m.name not in overlap]

    def names(ns):
        return ", ".join(ns[:4]) + (f" and {len(ns) - 4} more" if len(ns) > 4 else "")

    parts = [
        f"{label} {names(ns)}{tail}"
        for label, ns, tail in (
            ("same bytes as", same, ""),
            ("overlaps", overlap, ""),
            ("same storage as", apart, " (other bytes)"),
        )
        if ns
    ]
    return "; ".join(parts) + " - writes through one show in the others"


def _group(ranges: list[tuple[int, int]]) -> RunResponse:
    """One storage of these members, built unvalidated: the renderer must hold by itself,
    past the schema's caps too."""
    members = [
        StorageMember.model_construct(name=f"t{i}", kind="tensor", byte_range=list(r))
        for i, r in enumerate(ranges)
    ]
    return RunResponse.model_construct(
        ok=True,
        tensors=[],
        arrays=[],
        storages=[StorageInfo.model_construct(id="s0", device="cpu", nbytes=64, members=members)],
    )


def _verdict_of(resp: RunResponse, name: str, rng) -> str:
    groups = {s.id: storage_view._Group(s) for s in resp.storages}
    text, _ = storage_view._verdict(name, "tensor", groups["s0"], rng, None, False)
    return text


def test_indexed_verdicts_match_the_three_scans_on_random_groups():
    """Every kind of range: empty, equal, nested, touching, apart, and names not members."""
    rng = random.Random(14)
    for _ in range(150):
        ranges = []
        for _ in range(rng.randint(1, 30)):
            lo = rng.randint(0, 20)
            ranges.append((lo, lo + rng.choice([0, 0, 1, 2, 5, 10])))
        resp = _group(ranges)
        members = resp.storages[0].members
        for i, r in enumerate(ranges):
            assert _verdict_of(resp, f"t{i}", list(r)) == _reference_text(f"t{i}", members, list(r))
        query = sorted(rng.sample(range(0, 30), 2))
        assert _verdict_of(resp, "stranger", query) == _reference_text("stranger", members, query)
        assert _verdict_of(resp, "stranger", None) == _reference_text("stranger", members, None)


@pytest.mark.parametrize("members", [2_000, 3_000])
def test_a_storage_of_thousands_of_members_is_judged_in_n_log_n(members):
    """Regression: 2,000 members took 39 s and 3,000 took 137 s (three nested scans)."""
    ranges = [(i % 7, i % 7 + 8) for i in range(members)]  # seven distinct ranges
    # Plain records with the fields the verdicts read: thousands of pydantic models take
    # longer to build than the verdicts take to judge.
    entries = [SimpleNamespace(name=f"t{i}", byte_range=list(r)) for i, r in enumerate(ranges)]
    tensors = [
        SimpleNamespace(name=f"t{i}", storage="s0", byte_range=list(r), base=None, is_view=False)
        for i, r in enumerate(ranges)
    ]
    resp = SimpleNamespace(storages=[SimpleNamespace(id="s0", members=entries)], tensors=tensors, arrays=[])
    started = time.process_time()
    verdicts = storage_view.verdicts(cast(RunResponse, resp), {})  # duck-typed: no validation cost
    assert time.process_time() - started < 2.0
    same = sum(1 for r in ranges if r == ranges[0]) - 1
    assert verdicts[0].text == (
        f"same bytes as t7, t14, t21, t28 and {same - 4} more; "
        f"overlaps t1, t2, t3, t4 and {members - same - 1 - 4} more"
        " - writes through one show in the others"
    )


def test_a_claimed_byte_past_any_float_is_clamped_to_the_strip():
    resp = _group([(0, 8)]).model_copy()
    member = resp.storages[0].members[0].model_copy(update={"byte_range": [10**400, 10**401]})
    storage = resp.storages[0].model_copy(update={"members": [member]})
    (strip,), _ = storage_view.strips([storage], {})
    assert (strip.bars[0].start, strip.bars[0].end) == (64, 64)


def test_bar_labels_fit_the_name_column_in_monospace_columns():
    from app.web.storage_view import LABEL_COLS, _columns, short_label

    assert short_label("x") == "x" and short_label("a" * LABEL_COLS) == "a" * LABEL_COLS
    assert short_label("a" * 80) == "a" * (LABEL_COLS - 1) + "…"
    wide = short_label("张量" * 20)  # each CJK character takes two columns
    assert wide.endswith("…") and sum(_columns(c) for c in wide) <= LABEL_COLS
    x = torch.zeros(4)
    strips, _ = storage_view.strips(response_for({"n" * 80: x}).storages, {})
    assert strips[0].bars[0].label == "n" * (LABEL_COLS - 1) + "…" and strips[0].bars[0].name == "n" * 80
