"""A snippet's outcome is data: output, errors with snippet line numbers, and a snapshot."""

from __future__ import annotations

import textwrap

import pytest

pytestmark = pytest.mark.integration


def test_ok_run_returns_stdout_and_snapshot_of_namespace(sandbox):
    res = sandbox.result("import torch\nx = torch.ones(2, 3)\nprint('shape', tuple(x.shape))")
    assert res["ok"] is True
    assert res["error"] is None
    assert res["stdout"] == {"text": "shape (2, 3)\n", "truncated": False}
    assert isinstance(res["duration_ms"], float)
    snap = res["snapshot"]
    assert snap is not None, res["warnings"]
    assert [t["name"] for t in snap["tensors"]] == ["x"]
    assert snap["tensors"][0]["shape"] == [2, 3]


def test_stderr_is_captured_separately(sandbox):
    res = sandbox.result("import sys\nprint('to err', file=sys.stderr)\nprint('to out')")
    assert res["stdout"]["text"] == "to out\n"
    assert res["stderr"]["text"] == "to err\n"


def test_syntax_error_reports_its_line(sandbox):
    res = sandbox.result("x = 1\ny = 2\nz = (3 +\n")
    assert res["ok"] is False
    assert res["error"]["type"] == "SyntaxError"
    assert res["error"]["line"] == 3


def test_runtime_error_line_traceback_and_snapshot_before_error(sandbox):
    code = textwrap.dedent("""\
        import torch
        before = torch.arange(4)
        def inner(v):
            return v / 0 + undefined_name
        inner(before)
        after = 1
    """)
    res = sandbox.result(code)
    assert res["ok"] is False
    err = res["error"]
    assert err["type"] == "NameError"
    assert err["line"] == 4
    # Only the snippet's own frames: nothing of the runner or torch.
    assert [(f["line"], f["function"]) for f in err["traceback"]] == [(5, "<module>"), (4, "inner")]
    assert err["traceback"][1]["source"] == "return v / 0 + undefined_name"
    names = [t["name"] for t in res["snapshot"]["tensors"]]
    assert names == ["before"]


def test_exception_class_name_is_the_error_type(sandbox):
    res = sandbox.result("x = [1]\nx[5]")
    assert (res["error"]["type"], res["error"]["line"]) == ("IndexError", 2)


def test_sys_exit_zero_is_success_and_nonzero_is_an_error(sandbox):
    assert sandbox.result("import sys\nprint('bye')\nsys.exit(0)")["ok"] is True
    res = sandbox.result("import sys\nsys.exit(4)")
    assert (res["ok"], res["error"]["type"], res["error"]["message"]) == (False, "SystemExit", "4")


def test_print_of_100_kb_is_truncated_to_output_max_bytes(sandbox):
    res = sandbox.result("print('a' * 100_000)")
    assert res["ok"] is True
    assert res["stdout"]["truncated"] is True
    assert res["stdout"]["text"] == "a" * sandbox.pool.limits.output_max_bytes


def test_per_run_timeout_override_is_used(sandbox):
    res = sandbox.result("import time\nwhile True:\n    time.sleep(0.01)", timeout_s=0.3)
    assert res["error"]["type"] == "TimeLimit"
    assert "0.3" in res["error"]["message"]
