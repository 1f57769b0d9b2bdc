"""Pool-level behaviour: overload, oversize results, zygote death and replacement."""

from __future__ import annotations

import os
import signal
import time

import pytest

from app.sandbox.outcome import Overloaded, Unavailable

pytestmark = pytest.mark.integration

SLEEP = "import time\ntime.sleep(0.5)"


def _wait_for(predicate, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_overloaded_when_queue_is_full(small_pool):
    running = small_pool.submit(small_pool.pool.run(SLEEP))
    _wait_for(lambda: small_pool.pool.health()["busy"] == 1)
    queued = small_pool.submit(small_pool.pool.run(SLEEP))
    _wait_for(lambda: small_pool.pool.health()["queued"] == 1)
    with pytest.raises(Overloaded) as info:
        small_pool.run("x = 1")
    assert info.value.retry_after_s > 0
    assert running.result(30).result()["ok"] is True
    assert queued.result(30).result()["ok"] is True


def test_oversize_payload_drops_content_but_reports_why(small_pool):
    res = small_pool.result("print('a' * 10_000)")
    assert res["ok"] is False
    assert res["error"]["type"] == "OutputLimit"
    assert "result_max_bytes=4096" in res["error"]["message"]


def test_forged_oversize_frame_is_cut_off_by_the_zygote(small_pool):
    """A snippet writing straight to the result pipe cannot make the zygote buffer past the cap."""
    code = (
        "import os, stat\n"
        "for fd in range(3, 16):\n"
        "    try:\n"
        "        if stat.S_ISFIFO(os.fstat(fd).st_mode):\n"
        "            os.write(fd, (10 * 2**20).to_bytes(4, 'big') + b'{' * 100)\n"
        "    except OSError:\n"
        "        pass\n"
        "import time\ntime.sleep(5)\n"
    )
    outcome = small_pool.run(code)
    assert outcome.status == "result_too_large"
    assert outcome.result()["error"]["type"] == "OutputLimit"


def test_zygote_death_fails_in_flight_runs_then_it_is_replaced(small_pool):
    pool = small_pool.pool
    restarts = pool.health()["restarts"]
    in_flight = small_pool.submit(pool.run(SLEEP))
    _wait_for(lambda: pool.health()["busy"] == 1)
    os.kill(pool.health()["zygote_pid"], signal.SIGKILL)
    with pytest.raises(Unavailable):
        in_flight.result(30)
    small_pool.call(pool.wait_ready(120))
    assert pool.health()["restarts"] == restarts + 1
    assert small_pool.result("print('back')")["stdout"]["text"] == "back\n"
