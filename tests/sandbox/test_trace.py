"""Step-through (app.sandbox.trace) via run_snippet in this process, plus one run through the real
pool: steps per statement and iteration, line ranges, grad modes, with-blocks, caps, errors."""

from __future__ import annotations

import ast
import json
import textwrap
from typing import cast

import pytest

from app.sandbox.instrument import instrument
from app.sandbox.limits import SandboxLimits
from app.sandbox.runner import run_snippet

LIMITS = SandboxLimits(exec_timeout_s=5.0)


def traced(code: str, trace=True, limits: SandboxLimits = LIMITS) -> dict:
    return json.loads(run_snippet(textwrap.dedent(code), limits, trace=trace))


def lines(payload: dict) -> list[tuple]:
    return [(s["kind"], s["start_line"], s["end_line"], s["iteration"]) for s in payload["steps"]]


def test_plain_run_has_no_steps():
    assert "steps" not in json.loads(run_snippet("x = 1", LIMITS))


def test_one_step_per_top_level_statement_with_its_lines():
    p = traced("""\
        import torch
        x = torch.ones(2,
                       3)
        y = x.sum()
        """)
    assert lines(p) == [("statement", 1, 1, None), ("statement", 2, 3, None), ("statement", 4, 4, None)]
    assert p["steps_truncated"] is False
    assert p["steps"][1]["changes"]["tensors"]["added"] == ["x"]


def test_final_snapshot_is_the_same_as_a_plain_run():
    code = "import torch\na = torch.arange(6).view(2, 3)\nb = a.t()\na.add_(1)\n"
    plain = json.loads(run_snippet(code, LIMITS))
    assert traced(code)["snapshot"] == plain["snapshot"]


@pytest.mark.parametrize(
    "code",
    [
        "import torch\ntorch.manual_seed(0)\nlin = torch.nn.Linear(2, 2)\nlin.weight.data.fill_(7)\n",
        "import torch\nbig = torch.zeros(100_000)\nbig.data[50_001] = 5.0\nprint(big.max())\n",
    ],
)
def test_final_snapshot_sees_writes_no_version_counter_saw(code):
    """Regression: after `lin.weight.data.fill_(7)` a traced run's final snapshot still showed
    the old weights (the write moved no version counter), where a plain run showed 7s."""
    plain = json.loads(run_snippet(code, LIMITS))
    assert traced(code)["snapshot"] == plain["snapshot"]


def test_loop_iterations_are_steps_up_to_the_cap():
    p = traced(
        """\
        import torch
        w = torch.zeros(2)
        for i in range(5):
            w.add_(1)
        done = True
        """,
        trace={"loop_iterations_max": 3, "loop_body_iterations_max": 0},
    )
    assert lines(p) == [
        ("statement", 1, 1, None),
        ("statement", 2, 2, None),
        ("iteration", 3, 4, 1),
        ("iteration", 3, 4, 2),
        ("iteration", 3, 4, 3),
        ("statement", 3, 4, 5),
        ("statement", 5, 5, None),
    ]
    assert "iterations 4-5 ran without steps" in p["steps"][5]["note"]
    versions = [s["changes"]["tensors"]["changed"][0]["fields"]["version"] for s in p["steps"][2:6]]
    assert versions == [[0, 1], [1, 2], [2, 3], [3, 5]]


def test_the_first_iterations_step_through_the_loop_body():
    """In the first loop_body_iterations_max iterations each body statement is a step, so a
    training loop shows .grad appearing at backward() and cleared at the next line."""
    p = traced("""\
        import torch
        w = torch.ones(2, requires_grad=True)
        for i in range(3):
            loss = (w * 2).sum()
            loss.backward()
            if i < 5:
                w.grad = None
        done = 1
        """)
    assert lines(p) == [
        ("statement", 1, 1, None),
        ("statement", 2, 2, None),
        ("statement", 4, 4, 1),
        ("statement", 5, 5, 1),
        ("statement", 7, 7, 1),
        ("iteration", 3, 7, 1),
        ("statement", 4, 4, 2),
        ("statement", 5, 5, 2),
        ("statement", 7, 7, 2),
        ("iteration", 3, 7, 2),
        ("iteration", 3, 7, 3),
        ("statement", 8, 8, None),
    ]
    backward, cleared = p["steps"][3]["changes"], p["steps"][4]["changes"]
    assert backward["tensors"]["added"] == ["w.grad"] and cleared["tensors"]["removed"] == ["w.grad"]
    body = traced("for i in range(4):\n    x = i\n", trace={"loop_body_iterations_max": 3})
    assert [s["iteration"] for s in body["steps"] if s["kind"] == "statement"] == [1, 2, 3]


def test_after_the_first_iterations_the_body_runs_as_written():
    """The hooked copy of a loop body runs only while its flag holds; the snippet's own body (no
    hook per statement) after: a hook after every statement of every iteration doubled a
    300k-iteration loop's traced time."""
    tree = ast.parse("for i in range(9):\n    a = i\n    b = a\n")
    instrument(tree)
    loop = cast(ast.For, tree.body[0])
    choose = cast(ast.If, cast(ast.Try, loop.body[0]).body[0])  # for > try > if __tp_body__[0]
    assert ast.unparse(choose.test) == "__tp_body__[0]"
    assert [ast.unparse(n) for n in choose.orelse] == ["a = i", "b = a"]
    assert "__tp_step__" in ast.unparse(ast.Module(choose.body, []))
    p = traced("for i in range(9):\n    a = i\n    b = a\nflags = list(__tp_body__)\n")
    assert p["stdout"]["text"] == "" and [s["iteration"] for s in p["steps"]][:7] == [1, 1, 1, 2, 2, 2, 3]


def test_a_loop_inside_an_except_handler_still_counts_its_iterations():
    """Regression: the iteration hook took any active exception for the body raising, and in an
    except handler there always is one: such a loop had no iteration steps."""
    p = traced(
        "try:\n    1 / 0\nexcept ZeroDivisionError:\n    for i in range(3):\n        x = i\n",
        trace={"loop_body_iterations_max": 0},
    )
    assert [s["kind"] for s in p["steps"]] == ["caught", "iteration", "iteration", "iteration"]


def test_a_loop_in_a_loop_body_is_one_statement():
    p = traced("for i in range(2):\n    for j in range(3):\n        x = j\n    y = i\n")
    assert lines(p) == [
        ("statement", 2, 3, 1),
        ("statement", 4, 4, 1),
        ("iteration", 1, 4, 1),
        ("statement", 2, 3, 2),
        ("statement", 4, 4, 2),
        ("iteration", 1, 4, 2),
    ]


def test_continue_and_break_still_end_an_iteration():
    p = traced("""\
        n = 0
        while True:
            n += 1
            if n < 3:
                continue
            break
        """)
    assert [s["iteration"] for s in p["steps"] if s["kind"] == "iteration"] == [1, 2, 3]
    assert p["ok"] is True


def test_with_block_bodies_are_stepped_with_their_grad_mode():
    p = traced("""\
        import torch
        x = torch.ones(2, requires_grad=True)
        with torch.no_grad():
            a = x * 2
            with torch.enable_grad():
                b = x * 2
        with torch.inference_mode():
            c = x * 2
        d = x * 2
        """)
    modes = {s["start_line"]: s["grad_mode"] for s in p["steps"]}
    assert modes == {
        1: "enable_grad",
        2: "enable_grad",
        4: "no_grad",
        6: "enable_grad",
        8: "inference_mode",
        9: "enable_grad",
    }


def test_error_mid_way_keeps_the_steps_before_it_and_adds_an_error_step():
    p = traced("""\
        import torch
        a = torch.arange(12).view(3, 4)
        b = a.t()
        c = b.view(-1)
        print('never')
        """)
    assert p["ok"] is False and p["error"]["line"] == 4
    assert lines(p) == [
        ("statement", 1, 1, None),
        ("statement", 2, 2, None),
        ("statement", 3, 3, None),
        ("error", 4, 4, None),
    ]
    assert p["stdout"]["text"] == ""


def test_error_inside_a_loop_names_the_iteration():
    p = traced("""\
        for i in range(3):
            if i == 2:
                raise ValueError(i)
        """)
    assert lines(p)[-1] == ("error", 3, 3, 3)  # the statement that raised, in iteration 3
    assert [s["kind"] for s in p["steps"]] == ["iteration", "iteration", "error"]


TRY_VIEW = """\
    import torch
    a = torch.arange(12).view(3, 4)
    b = a.t()
    try:
        c = b.view(-1)
    except RuntimeError as err:
        print("view failed")
        c = b.reshape(-1)
    else:
        print("no error")
    finally:
        done = True
    """


def test_try_bodies_are_stepped_and_a_handled_exception_is_a_caught_step():
    p = traced(TRY_VIEW)
    assert p["ok"] is True
    assert lines(p) == [
        ("statement", 1, 1, None),
        ("statement", 2, 2, None),
        ("statement", 3, 3, None),
        ("caught", 5, 5, None),
        ("statement", 7, 7, None),
        ("statement", 8, 8, None),
        ("statement", 12, 12, None),
    ]
    caught = p["steps"][3]
    assert caught["note"].startswith("raised RuntimeError: view size is not compatible")
    assert caught["note"].endswith("handled by the except at line 6")
    assert caught["changes"]["empty"] is True  # the failed view made nothing
    assert p["steps"][4]["stdout"] == "view failed\n"
    assert p["steps"][5]["changes"]["tensors"]["added"] == ["c"]


def test_try_else_runs_stepped_when_nothing_raised():
    p = traced(TRY_VIEW.replace("b.view(-1)", "a.view(-1)"))
    assert [(k, a) for k, a, _, _ in lines(p)][3:] == [("statement", 5), ("statement", 10), ("statement", 12)]
    assert p["steps"][4]["stdout"] == "no error\n"


def test_caught_step_shows_what_the_statement_did_before_it_raised():
    p = traced("""\
        import torch
        x = torch.ones(4)
        try:
            y = x.add_(1).view(3)
        except RuntimeError:
            pass
        """)
    caught = next(s for s in p["steps"] if s["kind"] == "caught")
    assert (caught["start_line"], caught["end_line"]) == (4, 4)
    assert caught["changes"]["tensors"]["changed"][0]["fields"]["version"] == [0, 1]


def test_an_exception_that_escapes_the_try_steps_its_finally_then_ends_in_an_error_step():
    p = traced("""\
        x = 1
        try:
            y = 1 / 0
        except KeyError:
            pass
        finally:
            z = 2
        """)
    assert p["error"]["type"] == "ZeroDivisionError"
    assert lines(p) == [("statement", 1, 1, None), ("statement", 7, 7, None), ("error", 3, 3, None)]


def test_a_raise_in_a_loop_inside_try_names_its_iteration_when_caught():
    p = traced("""\
        try:
            for i in range(5):
                if i == 2:
                    raise ValueError("two")
        except ValueError as e:
            msg = str(e)
        """)
    assert lines(p) == [
        ("iteration", 2, 4, 1),
        ("iteration", 2, 4, 2),
        ("caught", 4, 4, 3),
        ("statement", 6, 6, None),
    ]
    assert "raised ValueError: two" in p["steps"][2]["note"]


ODD_STR = """\
    class Odd(Exception):
        def __str__(self):
            {body}
    try:
        raise Odd()
    except Odd:
        ok = 1
    """


@pytest.mark.parametrize(
    "body, kind", [("raise TypeError('no text')", "TypeError"), ("raise SystemExit(3)", "SystemExit")]
)
def test_the_snippets_broken_exception_str_does_not_break_stepping(body, kind):
    """Regression: the caught step's note calls str() on the snippet's exception, which the plain
    run never does; a __str__ raising SystemExit ended the traced run alone."""
    p = traced(ODD_STR.format(body=body))
    assert (
        p["ok"] is True and json.loads(run_snippet(textwrap.dedent(ODD_STR.format(body=body)), LIMITS))["ok"]
    )
    assert p["steps"][1]["note"].startswith(f"raised Odd: <str() failed: {kind}>")
    assert p["steps"][-1]["start_line"] == 7


def test_a_time_limit_inside_the_exceptions_str_still_ends_the_run():
    p = traced(ODD_STR.format(body="while True: pass"), limits=SandboxLimits(exec_timeout_s=0.3))
    assert p["error"]["type"] == "TimeLimit"
    assert p["steps"][-1]["kind"] == "error"


def test_a_long_exception_message_is_shortened_in_the_note():
    p = traced("try:\n    raise ValueError('x' * 5000)\nexcept ValueError:\n    pass\n")
    note = p["steps"][0]["note"]
    assert len(note) < 300 and "x" * 200 + "…" in note


def test_match_case_bodies_are_stepped():
    p = traced("""\
        n = 3
        match n:
            case 1:
                a = 1
            case 3:
                a = 3
                b = 4
        c = 5
        """)
    assert [s for _, s, _, _ in lines(p)] == [1, 6, 7, 8]


def test_step_cap_stops_stepping_not_the_run():
    p = traced("\n".join(f"v{i} = {i}" for i in range(10)) + "\nprint('end')", trace={"steps_max": 4})
    assert len(p["steps"]) == 4 and p["steps_truncated"] is True
    assert p["ok"] is True and p["stdout"]["text"] == "end\n"
    assert any("steps_max=4" in w for w in p["warnings"])


def test_byte_cap_stops_stepping_not_the_run():
    p = traced(
        "import torch\n" + "\n".join(f"t{i} = torch.randn(4, 4)" for i in range(20)),
        trace={"bytes_max": 6000},
    )
    assert p["ok"] is True and p["steps_truncated"] is True
    assert 1 <= len(p["steps"]) < 21
    assert [t["name"] for t in p["snapshot"]["tensors"]][-1] == "t19"


def test_stdout_is_split_by_step():
    p = traced("print('a')\nx = 1\nprint('b', end='')")
    assert [s["stdout"] for s in p["steps"]] == ["a\n", "", "b"]


def test_hooks_do_not_leak_into_the_namespace():
    p = traced("names = sorted(k for k in globals() if k.startswith('__tp'))\nprint(len(names))")
    assert p["stdout"]["text"] == "6\n"  # visible while it runs (documented) ...
    assert p["ok"] and p["snapshot"]["tensors"] == []


def test_syntax_error_has_no_steps():
    p = traced("x = (1 +\n")
    assert p["error"]["type"] == "SyntaxError" and p["steps"] == []


@pytest.mark.parametrize(
    "code", ["x = (1,\n", "import torch\nreturn 5\n", "a = 1\nnonlocal a\n", "x = 1\ny = 'a\\x00'\0\n"]
)
def test_a_broken_snippet_fails_traced_exactly_as_plain(code):
    """The parser's errors and the compiler's ('return' outside function, which ast.parse
    accepts): a traced run compiles only the rewritten tree, yet reports the same error."""
    plain = json.loads(run_snippet(code, LIMITS))
    got = json.loads(run_snippet(code, LIMITS, trace=True))
    assert plain["ok"] is False and got["error"] == plain["error"]
    assert got["steps"] == [] and not got["warnings"]


def test_future_import_stays_first():
    p = traced("from __future__ import annotations\nfrom __future__ import division\nx = 1")
    assert p["ok"] is True
    assert lines(p) == [("statement", 3, 3, None)]


def test_time_limit_while_stepping_is_a_time_limit():
    p = traced(
        "import time\nfor i in range(1000):\n    time.sleep(0.01)", limits=SandboxLimits(exec_timeout_s=0.3)
    )
    assert p["error"]["type"] == "TimeLimit"
    assert p["steps"][-1]["kind"] == "error"


def test_instrument_keeps_line_numbers_inside_try_and_handlers():
    tree = ast.parse("try:\n    x = 1\nexcept ValueError:\n    y = 2\nfinally:\n    z = 3\n")
    sites = instrument(tree)
    assert [(s.start_line, s.end_line) for s in sites] == [(2, 2), (3, 3), (4, 4), (6, 6)]
    handler = cast(ast.Try, tree.body[0]).handlers[0]
    assert [n.lineno for n in handler.body] == [3, 4, 4]  # caught hook, y = 2, its step hook


def test_instrument_keeps_snippet_line_numbers():
    tree = ast.parse("x = 1\n\nfor i in range(2):\n    y = i\n")
    sites = instrument(tree)
    assert [(s.start_line, s.end_line, s.loop, s.parent) for s in sites] == [
        (1, 1, False, None),
        (3, 4, True, None),
        (4, 4, False, 1),
    ]
    loop = next(n for n in tree.body if isinstance(n, ast.For))
    assert cast(ast.Try, loop.body[0]).body[0].lineno == 4  # the body, wrapped in try/finally, kept its line


@pytest.mark.integration
def test_trace_through_the_real_pool(sandbox):
    res = sandbox.result("import torch\nx = torch.ones(2)\nx.add_(1)", trace=True)
    assert res["ok"] is True
    assert [s["start_line"] for s in res["steps"]] == [1, 2, 3]
    assert res["steps"][2]["changes"]["tensors"]["changed"][0]["fields"]["version"] == [0, 1]
    assert "steps" not in sandbox.result("x = 1")


def test_pre_encoded_steps_are_spliced_into_valid_json():
    """Steps are JSON-encoded once (when measured against bytes_max) and spliced into the payload
    as bytes (trace.Encoded): the result must be the same JSON as encoding them as dicts."""
    from app.sandbox.runner import encode_payload
    from app.sandbox.trace import Encoded

    steps = [{"index": 0, "note": "ü \"quoted\""}, {"index": 1, "state": None}]
    payload = {"ok": True, "warnings": [], "steps_truncated": False}
    spliced = encode_payload({**payload, "steps": Encoded(json.dumps(s).encode() for s in steps)}, 10_000)
    assert json.loads(spliced) == {**payload, "steps": steps}
    assert json.loads(encode_payload({"steps": Encoded([])}, 100)) == {"steps": []}


def test_oversized_pre_encoded_steps_are_dropped_not_the_run():
    from app.sandbox.runner import encode_payload
    from app.sandbox.trace import Encoded

    payload = {
        "ok": True,
        "warnings": [],
        "snapshot": {"tensors": []},
        "steps_truncated": False,
        "steps": Encoded([json.dumps({"blob": "z" * 5000}).encode()]),
    }
    data = json.loads(encode_payload(payload, 1000))
    assert data["steps"] == [] and data["steps_truncated"] is True
    assert data["snapshot"] == {"tensors": []}
    assert data["warnings"][0].startswith("steps dropped: result was ")


def test_tensor_print_falls_back_field_by_field():
    """prints._tensor_print reads every field in one try; a tensor whose storage cannot be read
    (a meta tensor... any raising field) still gets a print, with None for that field."""
    import torch

    from app.inspector.prints import _tensor_print
    from app.inspector.walk import WalkResult

    fine = _tensor_print("x", [], torch.ones(2), WalkResult())
    assert fine[4] == (2,) and fine[-1][1:] == (8, True)  # (address, nbytes, on CPU)

    p = _tensor_print("s", [], torch.ones(3).to_sparse(), WalkResult())  # no storage
    assert p[4] == (3,) and p[-1] is None

    class Odd(torch.Tensor):  # an override is the snippet's: torch's own storage is read
        def untyped_storage(self):
            raise RuntimeError("no storage")

    odd = torch.ones(3).as_subclass(Odd)
    assert _tensor_print("o", [], odd, WalkResult())[-1][1:] == (12, True)
