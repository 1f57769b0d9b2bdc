"""app.inspector.content: per-allocation evidence of writes that version counters miss."""

from __future__ import annotations

import torch

from app.inspector import content


def test_small_cpu_memory_is_compared_whole():
    t = torch.zeros(16)
    alloc = content.allocation(t)
    before = content.token(alloc, t)
    assert content.is_exact(alloc) and before is not None and len(before) == 64
    t.data[7] = 1.0
    assert content.token(alloc, t) != before


def test_views_share_one_allocation():
    t = torch.zeros(4, 4)
    assert content.allocation(t.t()) == content.allocation(t[1:]) == content.allocation(t)


def test_big_memory_is_sampled_and_still_sees_whole_tensor_writes():
    t = torch.zeros(1_000_000)
    alloc = content.allocation(t)
    before = content.token(alloc, t)
    assert not content.is_exact(alloc) and before is not None and len(before) < 16 * 1024
    t.data.normal_()
    assert content.token(alloc, t) != before
    t.data.zero_()
    t.data[-1] = 3.0  # the last row is in the sample
    assert content.token(alloc, t) != before


def test_no_token_where_memory_cannot_be_read():
    meta = torch.empty(3, device="meta")
    assert content.token(content.allocation(meta), meta) is None
    assert content.token(None, None) is None
    empty = torch.empty(0)
    assert content.token(content.allocation(empty), empty) == b""
