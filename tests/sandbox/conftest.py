"""Real-worker fixtures. pytest-asyncio is not a dependency: each Pool lives on its own event
loop in a background thread, and tests call it through PoolHarness."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import pytest

from app.sandbox.limits import SandboxLimits
from app.sandbox.pool import Pool, RunOutcome

SECRET_NAME = "TP_TEST_SECRET"


class PoolHarness:
    def __init__(self, limits: SandboxLimits, **pool_kwargs: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        try:
            self.pool = self.call(self._make(limits, pool_kwargs))
        except BaseException:
            self._stop_loop()
            raise

    @staticmethod
    async def _make(limits: SandboxLimits, pool_kwargs: dict) -> Pool:
        pool = Pool(limits, **pool_kwargs)  # the Pool's asyncio objects belong to this loop
        await pool.start()
        return pool

    def call(self, coro: Any, timeout_s: float = 120.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def submit(self, coro: Any) -> Any:
        """Start a coroutine without waiting; returns a concurrent.futures.Future."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, code: str, **kwargs: Any) -> RunOutcome:
        return self.call(self.pool.run(code, **kwargs))

    def result(self, code: str, **kwargs: Any) -> dict:
        return self.run(code, **kwargs).result()

    def close(self) -> None:
        try:
            self.call(self.pool.close())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="session")
def sandbox() -> Any:
    """The shared pool. A secret is put in the server's environment before the zygote starts,
    so tests can check that it never reaches a snippet."""
    os.environ[SECRET_NAME] = "hunter2"
    harness = PoolHarness(SandboxLimits(exec_timeout_s=1.0, kill_grace_s=0.5), max_concurrent_runs=8)
    yield harness
    harness.close()
    os.environ.pop(SECRET_NAME, None)


@pytest.fixture(scope="module")
def small_pool() -> Any:
    """One run at a time, a queue of one, a tiny result cap: for overload, oversize results and
    zygote recovery (it gets killed, so it is kept apart from the shared pool)."""
    limits = SandboxLimits(exec_timeout_s=1.0, kill_grace_s=0.5, result_max_bytes=4096)
    harness = PoolHarness(limits, max_concurrent_runs=1, queue_max=1, spares=1)
    yield harness
    harness.close()


@pytest.fixture(scope="module")
def landlock_only():
    """Landlock without seccomp or the network namespace: proves Landlock holds on its own."""
    limits = SandboxLimits(exec_timeout_s=1.0, kill_grace_s=0.5, disable_layers="seccomp,netns")
    harness = PoolHarness(limits, spares=1)
    yield harness
    harness.close()


@pytest.fixture(scope="module")
def seccomp_only():
    """seccomp without Landlock or the network namespace: proves seccomp holds on its own."""
    limits = SandboxLimits(exec_timeout_s=1.0, kill_grace_s=0.5, disable_layers="landlock_fs,netns")
    harness = PoolHarness(limits, spares=1)
    yield harness
    harness.close()


@pytest.fixture()
def next_run_is_right(sandbox):
    """For the hostile suites: after the attack, the zygote is the same process (not killed,
    not restarted) and the very next benign run gives the right answer."""
    from tests.sandbox.hostile_kit import BENIGN

    before = sandbox.pool.health()
    yield
    after = sandbox.pool.health()
    assert (after["zygote_pid"], after["restarts"]) == (before["zygote_pid"], before["restarts"])
    res = sandbox.result(BENIGN)
    assert res["ok"] is True, res
    assert res["stdout"]["text"] == "[0, 2, 4, 6]\n"
    assert [(t["name"], t["shape"]) for t in res["snapshot"]["tensors"]] == [("x", [4])]
