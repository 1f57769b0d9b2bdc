"""Big results stay drawable: every row gets its stride diagram on demand, within the row caps."""

from __future__ import annotations

import torch

from app.web import view_model
from tests.web.pagekit import response_for


def test_every_row_has_a_lazy_diagram_and_the_45th_is_drawn_on_demand():
    resp = response_for({f"t{i:02d}": torch.arange(6.0).view(2, 3) for i in range(50)})
    view = view_model.build(resp, "")
    assert len(view.diagrams) == len(view.rows) == 50
    assert [d.idx for d in view.diagrams if not d.lazy] == [view.focus]
    d = view_model.diagram_at(resp, 44)
    assert d is not None and d.geometry is not None and d.name == view.rows[44].name


def test_the_diagram_placeholders_keep_the_row_caps():
    assert view_model.DIAGRAMS_MAX == view_model.TENSOR_ROWS_MAX + view_model.ARRAY_ROWS_MAX
    resp = response_for({"x": torch.ones(2)})
    assert view_model.diagram_at(resp, 1) is None and view_model.diagram_at(resp, -1) is None
