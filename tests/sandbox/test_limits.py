"""Every limit ends a run with a typed error and the server keeps serving."""

from __future__ import annotations

import textwrap

import pytest

pytestmark = pytest.mark.integration


def test_busy_loop_hits_time_limit_and_keeps_earlier_variables(sandbox):
    res = sandbox.result("import torch\nkept = torch.zeros(3)\nwhile True:\n    pass")
    assert res["ok"] is False
    assert res["error"]["type"] == "TimeLimit"
    assert res["error"]["line"] in (3, 4)
    assert [t["name"] for t in res["snapshot"]["tensors"]] == ["kept"]


@pytest.mark.parametrize(
    "code",
    [
        # SIGALRM blocked: the soft timer never fires, only the zygote's hard kill ends it.
        "import signal, time\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\ntime.sleep(30)",
        # TimeLimit caught and ignored forever.
        "import time\nwhile True:\n    try:\n        time.sleep(30)\n    except BaseException:\n        pass",
    ],
)
def test_snippet_that_evades_the_soft_timeout_is_hard_killed(sandbox, code):
    outcome = sandbox.run(code)
    assert outcome.status == "timeout"
    assert outcome.result()["error"]["type"] == "TimeLimit"
    assert sandbox.result("x = 1")["ok"] is True


@pytest.mark.parametrize("code", ["import torch\nt = torch.empty(10**11)", "b = bytearray(50 * 2**30)"])
def test_huge_allocation_is_memory_limit(sandbox, code):
    res = sandbox.result(code)
    assert res["ok"] is False
    assert res["error"]["type"] == "MemoryLimit"
    assert res["error"]["line"] == code.count("\n") + 1


def test_segfault_is_crash_with_signal_name(sandbox):
    outcome = sandbox.run("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)")
    assert (outcome.status, outcome.signal) == ("crash", "SIGSEGV")
    err = outcome.result()["error"]
    assert (err["type"], err["signal"]) == ("Crash", "SIGSEGV")
    assert "SIGSEGV" in err["message"]


def test_hard_exit_is_crash_with_exit_code(sandbox):
    outcome = sandbox.run("import os\nos._exit(3)")
    assert (outcome.status, outcome.exit_code, outcome.signal) == ("crash", 3, None)
    assert outcome.result()["error"]["exit_code"] == 3


def test_output_flood_is_output_limit_with_kept_prefix(sandbox):
    res = sandbox.result("n = 0\nwhile True:\n    print('x' * 999)\n    n += 1")
    assert res["error"]["type"] == "OutputLimit"
    assert res["stdout"]["truncated"] is True
    assert res["stdout"]["text"] == ("x" * 999 + "\n") * 65 + "x" * (65536 - 65 * 1000)


def test_fork_bomb_ends_and_server_survives(sandbox):
    code = textwrap.dedent("""\
        import os
        while True:
            os.fork()
    """)
    outcome = sandbox.run(code)
    assert outcome.status in ("ok", "timeout")
    assert outcome.result()["ok"] is False
    assert sandbox.result("print('still here')")["stdout"]["text"] == "still here\n"
