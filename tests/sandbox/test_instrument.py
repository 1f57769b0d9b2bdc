"""app.sandbox.instrument: the server compiles a traced snippet, the worker only loads it, and
the run is the same as when the worker compiles it itself."""

from __future__ import annotations

import base64
import json
import marshal
import textwrap

import pytest
import torch

from app.examples import EXAMPLES
from app.sandbox import instrument
from app.sandbox.limits import SandboxLimits
from app.sandbox.runner import run_snippet

LIMITS = SandboxLimits(exec_timeout_s=10.0)
LOOPS = """\
import torch
x = torch.zeros(3)
for i in range(4):
    if i == 2:
        continue
    x[i] += 1
else:
    y = x * 2
with torch.no_grad():
    z = x + 1
try:
    w = x.view(2, 2)
except RuntimeError as err:
    w = None
finally:
    v = 1
"""


def _comparable(payload: bytes) -> dict:
    """Without the timing, and with each step's storage keys as a count: keys of allocations
    made in one step are numbered in address order, which differs from run to run."""
    data = json.loads(payload)
    data.pop("duration_ms")
    for step in data.get("steps", []):
        step["storage_keys"] = len(step["storage_keys"])
    return data


@pytest.mark.parametrize(
    "code", [LOOPS, *(textwrap.dedent(e.code) for e in EXAMPLES)], ids=["loops", *(e.id for e in EXAMPLES)]
)
def test_precompiled_run_equals_the_worker_compiling_itself(code):
    pre = instrument.precompile(code)
    assert pre is not None
    torch.manual_seed(0)  # the examples that do not seed draw from this process's generator
    with_pre = run_snippet(code, LIMITS, trace=True, precompiled=pre)
    torch.manual_seed(0)
    without = run_snippet(code, LIMITS, trace=True)
    assert _comparable(with_pre) == _comparable(without)


def test_the_worker_runs_the_precompiled_code_not_the_source():
    """The job's code object is what runs (so a precompile that was not used would show)."""
    pre = instrument.precompile("x = 'precompiled'\n")
    payload = json.loads(run_snippet("x = 'source'\nprint(x)\n", LIMITS, trace=True, precompiled=pre))
    assert payload["stdout"]["text"] == ""
    assert [s["start_line"] for s in payload["steps"]] == [1]


@pytest.mark.parametrize(
    "code",
    [
        "x = (1\n",  # a syntax error: the worker reports it
        "x = 1 is 1\n",  # SyntaxWarning: for the snippet's stderr
        "s = '\\d'\n",  # DeprecationWarning (invalid escape), likewise
        "x = 1\n" + "# pad\n" * (instrument.PRECOMPILE_MAX_BYTES // 6),  # too big to compile here
        "a = 1\n" * (instrument.PRECOMPILE_MAX_STATEMENTS + 1),  # too many statements, though small
        "a = 1; " * (instrument.PRECOMPILE_MAX_STATEMENTS + 1),  # the same on one line
        "x = 1\x00\n",  # null byte: compile() raises ValueError
        "x = '\udcff'\n",  # lone surrogate: cannot even be encoded
        "x = " + "(" * 300 + "1" + ")" * 300 + "\n",  # nesting beyond the parser's limit
    ],
)
def test_what_the_server_cannot_compile_exactly_is_left_to_the_worker(code):
    assert instrument.precompile(code) is None


def test_compile_time_warning_still_reaches_the_snippets_stderr(sandbox):
    result = sandbox.result("x = 1 is 1\n", trace=True)
    assert result["ok"] is True
    assert "SyntaxWarning" in result["stderr"]["text"]
    assert len(result["steps"]) == 1


@pytest.mark.parametrize(
    "broken",
    [
        None,
        "text",
        {},
        {"magic": "0000", "code": "", "sites": []},
        {"magic": instrument._MAGIC, "code": "not base64!", "sites": []},
        {"magic": instrument._MAGIC, "code": base64.b64encode(b"\x00junk").decode(), "sites": []},
        {"magic": instrument._MAGIC, "code": base64.b64encode(marshal.dumps(42)).decode(), "sites": []},
        {
            "magic": instrument._MAGIC,
            "sites": [["a", 1]],
            "code": base64.b64encode(marshal.dumps(compile("1", "f", "exec"))).decode(),
        },
    ],
)
def test_an_unusable_precompiled_field_is_ignored(broken):
    assert instrument.load(broken) is None
    payload = json.loads(run_snippet("x = 1\ny = 2\n", LIMITS, trace=True, precompiled=broken))
    assert payload["ok"] is True
    assert [s["start_line"] for s in payload["steps"]] == [1, 2]


def test_the_pool_sends_the_precompiled_code_to_the_worker(sandbox, monkeypatch):
    """End to end (pool -> zygote -> child -> tracer): swap what the server compiles and the
    worker runs that instead of the source."""
    real = instrument.precompile
    monkeypatch.setattr(instrument, "precompile", lambda code: real("print('from the server')\n"))
    result = sandbox.result("print('from the source')\n", trace=True)
    assert result["stdout"]["text"] == "from the server\n"
    plain = sandbox.result("print('from the source')\n")
    assert plain["stdout"]["text"] == "from the source\n"
