"""Limit errors explained in plain words, from the messages real sandboxed runs end with."""

from __future__ import annotations

import pytest

from app.main import create_app
from app.sandbox.outcome import RunOutcome
from app.schemas import RunError, RunResponse
from app.settings import Settings
from app.web.explain import explain
from app.web.explain_limits import (
    Limits,
    _environment_limits,
    asked_bytes,
    configured_limits,
    limits_of,
    size_text,
)
from tests.forged_kit import ForgedPool, encoded, payload
from tests.webserver import client_for

pytestmark = pytest.mark.integration

SETTINGS = Settings(exec_timeout_s=3.0, kill_grace_s=0.5, memory_budget_mb=512)
SNIPPETS = {
    "memory": "import torch\nx = torch.empty(10**9)\n",
    "numpy": "import numpy as np\na = np.ones(10**9)\n",
    "time": "while True:\n    pass\n",
    "output": "print('x' * 10**7)\n",
}


@pytest.fixture(scope="module")
def ran() -> dict[str, RunResponse]:
    with client_for(create_app(SETTINGS)) as client:
        return {
            k: RunResponse.model_validate(client.post("/api/run", json={"code": c}, timeout=60).json())
            for k, c in SNIPPETS.items()
        }


def _explained(r: RunResponse, kind: str):
    assert r.error is not None and r.error.type == kind, r.error
    limits = limits_of(SETTINGS)
    ex = explain(r.error, "", r.tensors, limits)
    assert ex is not None, r.error.message
    return ex, " ".join([ex.title, *ex.points])


def test_torch_out_of_memory_names_the_amount_and_the_budget(ran):
    ex, text = _explained(ran["memory"], "MemoryLimit")
    assert "you tried to allocate 4000000000 bytes" in ran["memory"].error.message
    assert ex.title == "Asked for 3.7 GiB; a run may use 512 MiB"
    assert "4,000,000,000 bytes" in text and "Tip:" in text
    assert "enforce fail" not in text and "alloc_cpu" not in text


def test_numpy_out_of_memory_names_the_amount(ran):
    ex, _ = _explained(ran["numpy"], "MemoryLimit")
    assert ex.title == "Asked for 7.4 GiB; a run may use 512 MiB"


def test_endless_loop_names_the_time_limit_and_asks_about_loops(ran):
    ex, text = _explained(ran["time"], "TimeLimit")
    assert ex.title == "Stopped after 3 s — the time limit. Is there an endless loop?"
    assert "exec_timeout_s" not in text and "Tip:" in text


def _ended(status: str, signal: str | None = None) -> RunError:
    """The error the supervisor reports for a run the sandbox itself ended (its own message)."""
    outcome = RunOutcome(status=status, payload=b"", signal=signal, exit_code=None, wall_ms=6020, queue_ms=0)
    return RunError.model_validate(outcome.result()["error"])


def test_cpu_time_names_the_cpu_limit():
    err = _ended("crash", "SIGXCPU")  # RLIMIT_CPU's signal
    ex = explain(err, "", [], limits_of(Settings(cpu_time_s=10)))
    assert ex is not None and ex.title == "Stopped after 10 s of CPU time — the CPU limit"
    assert "cpu_time_s" not in ex.title and any("Tip:" in p for p in ex.points)


def test_output_flood_names_the_output_limit(ran):
    ex, text = _explained(ran["output"], "OutputLimit")
    assert "output_abort_bytes=8388608" in ran["output"].error.message
    assert ex.title == "Stopped after printing 8 MiB — the output limit"
    assert "first 64 KiB" in text and "Tip:" in text


def test_a_hard_kill_says_the_run_would_not_stop():
    err = _ended("timeout")
    assert err.message == "killed after 6.02 s of wall time"
    ex = explain(err, "", [], limits_of(Settings(exec_timeout_s=5)))
    assert ex is not None and ex.title.startswith("Stopped after 5 s — the time limit")
    assert any("killed after 6.0 s" in p for p in ex.points)


def test_an_oversized_result_names_its_size_and_the_cap():
    err = RunError(type="OutputLimit", message="result was 20971520 bytes, over result_max_bytes=16777216")
    ex = explain(err, "", [], configured_limits())
    assert (
        ex is not None
        and ex.title == "The result (20 MiB) was too big to send: a run's snapshot may be 16 MiB"
    )


def test_sizes_and_asked_amounts():
    assert [size_text(n) for n in (512, 2048, 1024**3, 4 * 10**9)] == [
        "512 bytes",
        "2 KiB",
        "1 GiB",
        "3.7 GiB",
    ]
    assert asked_bytes("CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0 ...)") == 20 * 1024 * 1024
    assert asked_bytes("memory limit exceeded") is None


def test_the_default_limits_are_the_environments(monkeypatch):
    _environment_limits.cache_clear()
    monkeypatch.setenv("TP_MEMORY_BUDGET_MB", "2048")
    try:
        err = RunError(type="MemoryLimit", message="memory limit exceeded")
        ex = explain(err, "", [])
        assert ex is not None and ex.title == "Out of memory: a run may use 2 GiB"
        assert configured_limits().memory_budget_mb == 2048
    finally:
        _environment_limits.cache_clear()


def test_the_page_names_the_serving_apps_limits_not_the_environments():
    """Regression: the page's explanation read Settings() from the environment, so a server
    built with Settings(memory_budget_mb=256) in code told learners a run may use 1 GiB."""
    error = {"type": "MemoryLimit", "message": "memory limit exceeded"}
    pool = ForgedPool.factory(lambda code, trace: encoded(payload(ok=False, error=error)))
    with client_for(create_app(Settings(memory_budget_mb=256), pool_factory=pool)) as client:
        page = client.post("/fragments/run", data={"code": "x = 1"}).text
    assert "a run may use 256 MiB" in page and "a run may use 1 GiB" not in page


def test_limits_default_to_the_sandboxs_one_set_of_defaults():
    assert Limits() == limits_of(Settings())  # Settings take theirs from SandboxLimits too


def test_a_limit_error_reads_in_plain_words_first_and_the_sandboxs_words_on_request():
    """The status line and the card's first words were the operator's ("exceeded
    exec_timeout_s=5"); the sandbox's message is still there, folded."""
    error = {"type": "TimeLimit", "message": "exceeded exec_timeout_s=5"}
    pool = ForgedPool.factory(lambda code, trace: encoded(payload(ok=False, error=error)))
    with client_for(create_app(Settings(), pool_factory=pool)) as client:
        page = client.post("/fragments/run", data={"code": "while True: pass"}).text
    summary = page.split('data-error-summary="', 1)[1].split('"', 1)[0]
    assert summary.startswith("TimeLimit: Stopped after 5 s") and "exec_timeout_s" not in summary
    card = page[page.index('id="status-card"') :]
    assert card.index("Stopped after 5 s") < card.index("What the sandbox reported")
    assert card.index("What the sandbox reported") < card.index("exceeded exec_timeout_s=5")
    assert '<pre class="err-msg">exceeded' in card.split("<details", 1)[1]  # only inside the fold
