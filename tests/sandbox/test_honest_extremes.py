"""Honest snippets at the public schema's caps, through the real sandbox and the server's
converter: each was shown as a Crash ("the worker sent an invalid result") because the inspector
or the runner wrote a field past a cap of app.schemas (an exception class named by 5,000
characters, 25,000 parameters, a 5,000-item hyperparameter, a traceback 30,000 frames deep, a
structured dtype whose str passes 4,096 characters). Now each is cut at its source and says so,
plain and stepped, and the run shows what the snippet did.
"""

from __future__ import annotations

import textwrap

import pytest

from app.convert import to_response
from app.sandbox.runner import WARNINGS_KEPT, _few
from app.schemas import (
    FRAMES_MAX,
    LABEL_CHARS_MAX,
    MODULE_ITEMS_MAX,
    SAVED_MAX,
    SETTING_ITEMS_MAX,
    WARNINGS_MAX,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("next_run_is_right")]

MODES = {"plain": None, "stepped": True, "changes_only": {"states": False}}


def _responses(sandbox, code: str) -> dict:
    """Each mode's response as the server makes it; never the invalid-result Crash."""
    out = {}
    for mode, trace in MODES.items():
        response = to_response(sandbox.run(code, trace=trace, timeout_s=20))
        assert response.error is None or response.error.type != "Crash", (mode, response.error)
        out[mode] = response
    return out


def test_an_exception_class_named_by_5000_chars_is_shortened_not_a_crash(sandbox):
    runs = _responses(sandbox, "E = type('E' * 5000, (Exception,), {})\nraise E('boom')")
    for mode, r in runs.items():
        assert r.ok is False and r.error.message == "boom", mode
        assert len(r.error.type) == LABEL_CHARS_MAX, mode
        assert r.error.type == "E" * (LABEL_CHARS_MAX - 1) + "…", mode
        assert r.error.line == 2, mode


def test_a_module_of_25000_parameters_lists_the_first_20000_and_says_so(sandbox):
    code = (
        "import torch\nfrom torch import nn\n"
        "m = nn.ParameterList([nn.Parameter(torch.ones(1)) for _ in range(25000)])"
    )
    for mode, r in _responses(sandbox, code).items():
        (m,) = [e for e in r.modules if e.name == "m"]
        assert len(m.parameters) == MODULE_ITEMS_MAX, mode
        assert [p.name for p in m.parameters[:3]] == ["0", "1", "2"], mode
        assert m.parameters[-1].name == str(MODULE_ITEMS_MAX - 1), mode
        assert m.param_count == 25000, mode  # every parameter counted, listed or not
        assert m.truncated is True and r.truncated is True, mode
        assert any(w.startswith("m: only part is listed: parameters") for w in r.warnings), mode


def test_an_optimizer_over_25000_parameters_lists_20000_params_and_states(sandbox):
    code = textwrap.dedent("""\
        import torch
        ps = [torch.nn.Parameter(torch.ones(1)) for _ in range(25000)]
        opt = torch.optim.SGD(ps, lr=0.1, momentum=0.9)
        for p in ps:
            p.grad = torch.ones(1)
        opt.step()
        """)
    for mode, r in _responses(sandbox, code).items():
        (opt,) = [e for e in r.modules if e.name == "opt"]
        assert len(opt.param_groups[0].params) == MODULE_ITEMS_MAX, mode
        assert len(opt.state) == MODULE_ITEMS_MAX, mode
        assert "momentum_buffer" in opt.state[0].entries, mode
        # past the walk's tensors_max a parameter has no name: its type and shape, not its repr
        assert opt.param_groups[0].params[-1] == "<Parameter [1]>", mode
        assert opt.truncated is True and r.truncated is True, mode
        assert any(w.startswith("opt: only part is listed: state") for w in r.warnings), mode


def test_a_5000_item_hyperparameter_keeps_999_items_and_an_ellipsis(sandbox):
    code = (
        "import torch\np = torch.nn.Parameter(torch.ones(1))\n"
        "opt = torch.optim.SGD([p], lr=0.1)\nopt.param_groups[0]['foo'] = list(range(5000))"
    )
    for mode, r in _responses(sandbox, code).items():
        (opt,) = [e for e in r.modules if e.name == "opt"]
        foo = opt.param_groups[0].hyperparameters["foo"]
        assert len(foo) == SETTING_ITEMS_MAX, mode
        assert foo[:-1] == list(range(SETTING_ITEMS_MAX - 1)) and foo[-1] == "…", mode
        assert opt.param_groups[0].hyperparameters["lr"] == 0.1, mode
        assert opt.truncated is True and r.truncated is True, mode
        assert any(w.startswith("opt: only part is listed") for w in r.warnings), mode


def test_a_traceback_30000_frames_deep_keeps_its_ends_and_counts_the_rest(sandbox):
    code = "import sys\nsys.setrecursionlimit(30000)\ndef f(n):\n    return f(n + 1)\nf(0)"
    for mode, r in _responses(sandbox, code).items():
        frames = r.error.traceback
        assert r.error.type == "RecursionError", mode
        assert len(frames) == 201 <= FRAMES_MAX, mode
        assert (frames[0].function, frames[0].line) == ("<module>", 5), mode
        assert all((f.function, f.line) == ("f", 4) for f in frames[1:100] + frames[101:]), mode
        gap = frames[100]
        assert gap.line is None and gap.source.endswith("more frames left out]"), mode
        left_out = int(gap.source.strip("[").split()[0].replace(",", ""))
        assert left_out > 20000, mode  # as deep as the recursion went, less the 200 kept
        assert r.error.line == 4, mode


def test_a_structured_dtype_over_4096_chars_is_shortened_not_a_crash(sandbox):
    code = "import numpy as np\na = np.zeros(2, dtype=[('f' * 3000, 'f4'), ('g' * 3000, 'i4')])"
    for mode, r in _responses(sandbox, code).items():
        assert r.ok is True, mode
        (a,) = [e for e in r.arrays if e.name == "a"]
        assert len(a.dtype) == LABEL_CHARS_MAX and a.dtype.endswith("…"), mode
        assert a.dtype.startswith("[('" + "f" * 100), mode
        assert (a.shape, a.itemsize, a.nbytes) == ([2], 8, 16), mode


def test_a_custom_function_saving_12000_tensors_lists_the_first_10000(sandbox):
    code = textwrap.dedent("""\
        import torch
        class Many(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(*[x] * 12000)
                return x * 2
            @staticmethod
            def backward(ctx, g):
                return g * 2
        x = torch.ones(2, requires_grad=True)
        y = Many.apply(x)
        """)
    for mode, r in _responses(sandbox, code).items():
        (node,) = [n for n in r.graph.nodes if "y" in n.tensors]
        assert len(node.saved) == SAVED_MAX, mode
        assert node.saved[0].name == "saved_tensors[0]" and node.saved[0].tensor == "x", mode
        assert r.graph.truncated is True and r.truncated is True, mode
        assert any("the first 10,000 of 12,000 saved tensors" in w for w in r.warnings), mode


def test_warnings_past_the_kept_count_end_in_how_many_more():
    """The server joins the result's warnings and its snapshot's: each is kept short enough."""
    assert 2 * WARNINGS_KEPT + 2 <= WARNINGS_MAX  # (+2: the "dropped" notes of encode_payload)
    many = [f"w{i}" for i in range(WARNINGS_KEPT + 500)]
    kept = _few(many)
    assert len(kept) == WARNINGS_KEPT and kept[:-1] == many[: WARNINGS_KEPT - 1]
    assert kept[-1] == "and 501 more warnings not listed"
    assert _few(many[:WARNINGS_KEPT]) == many[:WARNINGS_KEPT]
