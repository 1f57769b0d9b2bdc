"""%%tensors --steps without a kernel (app.notebook.steps with a stand-in shell): the steps the
widget steps through, their states, labels and output, and a cell that raises."""

from __future__ import annotations

import builtins
from types import SimpleNamespace
from typing import Any

import torch

import app.notebook
from app.notebook import display, panels, steps
from tests.notebook import kit

CELL = "s = torch.arange(4)\nv = s.view(2, 2)\nprint('hi')\nv.add_(10)\n"


def _shell(ns: dict) -> SimpleNamespace:
    shown: list[str] = []
    return SimpleNamespace(
        user_ns=ns,
        user_ns_hidden={"In": []},
        transform_cell=lambda cell: cell,
        showtraceback=lambda: shown.append("traceback"),
        shown=shown,
    )


def _run(cell: str, ns: dict):
    shell = _shell(ns)
    payload, raised = steps.run_stepped(
        shell, cell, lambda: app.notebook.visible_names(ns, shell.user_ns_hidden)
    )
    return panels.public(payload), raised, shell


def test_each_step_shows_the_names_made_so_far():
    ns: dict[str, Any] = {
        "__name__": "__main__",
        "__builtins__": builtins,
        "torch": torch,
        "In": [torch.ones(1)],
    }
    resp, raised, _ = _run(CELL, ns)
    assert not raised and resp.ok and len(resp.steps) == 4
    shown, labels = display.stepped(resp, CELL)
    assert set(kit.rows_of(shown[0])) == {"s"}  # IPython's `In` (hidden) is never observed
    assert set(kit.rows_of(shown[1])) == {"s", "v"}
    assert labels[1] == "Step 2 of 4, line 2: v = s.view(2, 2)"
    assert resp.steps[2].stdout == "hi\n"
    assert ns["s"].tolist() == [10, 11, 12, 13] and "v" in ns  # the names stay, as a cell's do


def test_a_stepped_cell_that_raises_shows_the_traceback_and_its_error_step():
    ns = {"__name__": "__main__", "__builtins__": builtins, "torch": torch}
    resp, raised, shell = _run("a = torch.ones(2)\nb = a.view(3)\n", ns)
    assert raised and shell.shown == ["traceback"]
    assert resp.error is not None and resp.error.type == "RuntimeError" and resp.error.line == 2
    assert [s.kind for s in resp.steps] == ["statement", "error"]
    assert "a" in ns and "b" not in ns


def test_steps_drawn_for_the_widget_are_capped(monkeypatch):
    monkeypatch.setattr(display, "STEPS_DRAWN_MAX", 2)
    ns = {"__name__": "__main__", "__builtins__": builtins, "torch": torch}
    resp, _, _ = _run(CELL, ns)
    shown, labels = display.stepped(resp, CELL)
    assert len(shown) == len(labels) == 2 and labels[1].startswith("Step 2 of 4")
