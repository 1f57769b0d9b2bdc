"""Runs are isolated from each other, from the server's environment and from the host."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from app.sandbox.pool import REPO_ROOT
from tests.sandbox.conftest import SECRET_NAME
from tests.sandbox.hostile_kit import gone

pytestmark = pytest.mark.integration


def test_no_state_leaks_between_runs(sandbox):
    polluter = textwrap.dedent("""\
        import builtins, torch
        leaked_global = 5
        builtins.LEAK = 1
        torch.manual_seed(123)
        torch.add = lambda *a, **k: 'patched'
    """)
    probe = textwrap.dedent("""\
        import builtins, torch
        print(json_out := [hasattr(builtins, 'LEAK'), 'leaked_global' in globals(),
                           torch.add(torch.ones(1), 1).tolist(), torch.initial_seed()])
    """)
    fresh = sandbox.result(probe)["stdout"]["text"]
    assert sandbox.result(polluter)["ok"] is True
    after = sandbox.result(probe)["stdout"]["text"]
    assert after == fresh
    assert after.startswith("[False, False, [2.0], ")
    assert "123]" not in after


def test_server_environment_does_not_reach_snippets(sandbox):
    assert os.environ[SECRET_NAME] == "hunter2"  # set before the zygote started
    res = sandbox.result("import os, json\nprint(json.dumps(dict(os.environ)))")
    env = json.loads(res["stdout"]["text"])
    assert SECRET_NAME not in env
    assert "hunter2" not in res["stdout"]["text"]
    assert env["OMP_NUM_THREADS"] == "1"


def test_uid_drop_when_root(sandbox):
    info = sandbox.pool.health()["uid_drop"]
    if os.geteuid() != 0:
        assert info == {"active": False, "reason": "server is not root; children keep its uid"}
        return
    assert info["active"] is True, info["reason"]
    code = textwrap.dedent(f"""\
        import os
        print(os.getuid(), os.getgid(), os.getgroups())
        for attempt in (lambda: os.listdir('/root'), lambda: open({str(REPO_ROOT / 'owned')!r}, 'w')):
            try:
                attempt()
                print('allowed')
            except PermissionError:
                print('denied')
    """)
    res = sandbox.result(code)
    assert res["stdout"]["text"] == "64123 64123 []\ndenied\ndenied\n", res


def test_eight_concurrent_runs_all_succeed_in_distinct_processes(sandbox):
    code = "import os, time, torch\nx = torch.ones(2)\ntime.sleep(0.2)\nprint(os.getpid())"
    futures = [sandbox.submit(sandbox.pool.run(code)) for _ in range(8)]
    outcomes = [f.result(60) for f in futures]
    results = [o.result() for o in outcomes]
    assert all(r["ok"] for r in results), results
    pids = {int(r["stdout"]["text"]) for r in results}
    assert len(pids) == 8
    assert pids == {o.pid for o in outcomes}


@pytest.mark.parametrize("escape", ["", "os.setsid()"])
def test_grandchild_holding_the_result_pipe_neither_hangs_nor_survives(landlock_only, escape):
    """The run completes on its result frame, not on EOF (the grandchild keeps the pipe open),
    and the grandchild is killed afterwards, even one that left the session (setsid).
    seccomp forbids fork, so this backstop is tested in a pool without seccomp."""
    code = textwrap.dedent(f"""\
        import os, time
        pid = os.fork()
        if pid == 0:
            {escape}
            time.sleep(60)
            os._exit(0)
        print(pid)
    """)
    outcome = landlock_only.run(code)
    res = outcome.result()
    assert outcome.status == "ok", outcome
    assert res["ok"] is True, res["error"]
    assert gone(int(res["stdout"]["text"])), res["stdout"]


def test_zygote_never_initialises_cuda(sandbox):
    sandbox.result("import torch\nx = torch.ones(2)")
    assert sandbox.call(sandbox.pool.diagnostics())["cuda_initialized"] is False
    assert sandbox.pool.ready_info["cuda_initialized"] is False


@pytest.mark.cuda
def test_cuda_snippet_shows_cuda_device(sandbox):
    res = sandbox.result("import torch\nx = torch.ones(2, device='cuda')")
    assert res["ok"] is True, res["error"]
    assert res["snapshot"]["tensors"][0]["device"] == "cuda:0"
    assert sandbox.call(sandbox.pool.diagnostics())["cuda_initialized"] is False


def test_pool_health_reports_counts(sandbox):
    health = sandbox.pool.health()
    assert health["state"] == "ready"
    assert (health["busy"], health["queued"], health["max_concurrent_runs"]) == (0, 0, 8)
    assert health["limits"]["exec_timeout_s"] == 1.0
