"""Stride geometry checked against torch itself: views of ``arange`` hold their own storage
offsets as values, so ``view[idx]`` must equal the offset the diagram prints for ``idx``."""

import pytest
import torch

from app.web import strides


def _views():
    base = torch.arange(48)
    return {
        "transposed": base[:12].view(3, 4).t(),
        "sliced": base.view(6, 8)[1:5:2, 2:7:3],
        "expanded": base[5:8].expand(4, 3),
        "3d-permuted": base[:24].view(2, 3, 4).permute(2, 0, 1),
        "scalar": base[7],
        "1d-step": base[3::5],
    }


@pytest.mark.parametrize("name", list(_views()))
def test_every_drawn_cell_shows_the_offset_torch_reads(name):
    v = _views()[name]
    d = strides.layout(list(v.shape), list(v.stride()), int(v.storage_offset()), storage_cells=48)
    assert d.cells, "something must be drawn"
    for cell in d.cells:
        assert v[cell.index].item() == cell.offset, cell


@pytest.mark.parametrize("name", list(_views()))
def test_strip_marks_exactly_the_cells_the_view_reads(name):
    v = _views()[name]
    d = strides.layout(list(v.shape), list(v.stride()), int(v.storage_offset()), storage_cells=48)
    read = {s.offset for s in d.strip if s.readers}
    assert read == set(v.flatten().tolist())


def test_expanded_tensor_counts_repeated_readers():
    v = torch.arange(3).expand(4, 3)  # stride (0, 1)
    d = strides.layout(list(v.shape), list(v.stride()), int(v.storage_offset()))
    assert [(s.offset, s.readers) for s in d.strip] == [(0, 4), (1, 4), (2, 4)]


def test_dtype_view_draws_its_own_element_size_cells():
    x = torch.zeros(4, dtype=torch.float32)
    h = x.view(torch.int16)[2:5]  # 2-byte cells over x's 16 bytes: 8 cells
    d = strides.layout(
        list(h.shape),
        list(h.stride()),
        int(h.storage_offset()),
        storage_cells=x.untyped_storage().nbytes() // h.element_size(),
    )
    assert len(d.strip) == 8
    assert [s.offset for s in d.strip if s.readers] == [2, 3, 4]


def test_hover_formula_spells_out_the_sum():
    assert strides.offset_formula((1, 2), [1, 4], 3) == "offset = 3 + 1·1 + 2·4 = 12"
    assert strides.offset_formula((), [], 7) == "offset = storage_offset = 7"


def test_big_tensor_is_truncated_and_says_so():
    d = strides.layout([100, 200], [200, 1], 0)
    rows = {c.index[0] for c in d.cells}
    cols = {c.index[1] for c in d.cells}
    assert len(rows) <= strides.GRID_ROWS_MAX and len(cols) <= strides.GRID_COLS_MAX
    assert 99 in rows and 199 in cols, "the tail of each axis is kept"
    assert len(d.strip) == strides.STRIP_MAX
    assert any("big tensor" in n for n in d.notes) and any("drawing cells" in n for n in d.notes)


def test_many_leading_slices_are_elided():
    v = torch.arange(10 * 2 * 2).view(10, 2, 2)
    d = strides.layout(list(v.shape), list(v.stride()), 0)
    slices = {c.index[0] for c in d.cells}
    assert len(slices) == strides.BLOCKS_MAX and 9 in slices
    assert any(label.text == "⋮ more slices" for label in d.labels)


def test_sliced_view_far_into_storage_draws_the_window_it_reads():
    v = torch.arange(1000)[900:905]
    d = strides.layout(list(v.shape), list(v.stride()), int(v.storage_offset()), storage_cells=1000)
    assert {s.offset for s in d.strip if s.readers} == set(range(900, 905))


def test_empty_tensor_reads_nothing():
    d = strides.layout([0, 3], [3, 1], 0)
    assert d.cells == [] and not any(s.readers for s in d.strip)
    assert any("empty" in n for n in d.notes)


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.arange(12).view(3, 4),
        lambda: torch.arange(12).view(3, 4).t(),
        lambda: torch.arange(24).view(2, 3, 4)[:, 1:, :],
        lambda: torch.arange(24).view(2, 3, 4).permute(1, 0, 2),
        lambda: torch.arange(3).expand(2, 3),
    ],
)
def test_mergeable_dims_agrees_with_torch_view(make):
    t = make()
    merge = strides.mergeable_dims(list(t.shape), list(t.stride()))
    for d, ok in enumerate(merge):
        shape = list(t.shape[:d]) + [t.shape[d] * t.shape[d + 1]] + list(t.shape[d + 2 :])
        try:
            t.view(shape)
            viewable = True
        except RuntimeError:
            viewable = False
        assert ok == viewable, (d, t.shape, t.stride())


def test_negative_numpy_strides_cover_the_right_cells():
    # numpy a[::-1] starts at the last item and walks back: offset 4, stride -1
    d = strides.layout([5], [-1], 4, storage_cells=5)
    assert [c.offset for c in d.cells] == [4, 3, 2, 1, 0]
    assert {s.offset for s in d.strip if s.readers} == {0, 1, 2, 3, 4}


def test_a_negative_dimension_does_not_enumerate_10_30_offsets():
    """Regression: shape [10**30, -1] has a negative prod(), which passed the enumeration cap,
    and covered_offsets looped over 10**30 offsets (+400 MB/s until uvicorn was killed)."""
    assert strides.covered_offsets([10**30, -1], [1, 1], 0) is None
    d = strides.layout([10**30, -1], [1, 1], 0)
    assert d.cells == [] and d.strip == [] and d.notes == ["not drawn: a negative size"]


def test_a_10_30_element_tensor_is_drawn_from_a_few_cells():
    """prod(shape) is past every cap: only the drawn elements are enumerated."""
    d = strides.layout([10**15, 10**15], [10**15, 1], 0)
    assert strides.covered_offsets([10**15, 10**15], [10**15, 1], 0) is None
    assert len(d.cells) == strides.GRID_ROWS_MAX * strides.GRID_COLS_MAX
    assert len(d.strip) == strides.STRIP_MAX
    assert {s.offset for s in d.strip if s.readers} == {
        c.offset for c in d.cells if c.offset < strides.STRIP_MAX
    }


@pytest.mark.parametrize(
    "shape, stride, offset, reason",
    [
        ([2] * 65, [1] * 65, 0, "65 dimensions (the diagram draws up to 64)"),
        ([2, 3], [3], 0, "1 strides for 2 dimensions"),
        ([2, 3], [3, 2**63], 0, "a size, stride or offset beyond 64 bits"),
        ([2, 3], [3, 1], -(10**4000), "a size, stride or offset beyond 64 bits"),
    ],
)
def test_a_geometry_no_tensor_has_is_not_drawn(shape, stride, offset, reason):
    """A forged shape, stride or offset: no loop and no 4,000-digit str(), a reason instead."""
    assert strides.undrawable(shape, stride, offset) == reason
    assert strides.layout(shape, stride, offset).notes == [f"not drawn: {reason}"]


def test_64_dimensions_are_drawn():
    shape = [1] * 60 + [2, 3, 4, 5]
    t = torch.arange(120).view(shape)
    d = strides.layout(shape, list(t.stride()), 0)
    assert d.cells and all(t[c.index].item() == c.offset for c in d.cells)


def test_mergeable_dims_with_fewer_strides_than_dims_does_not_raise():
    assert strides.mergeable_dims([2, 3, 4], [12]) == []
