"""A pool whose "worker" answers bytes the test chooses: a snippet owns its worker and can send
any payload (it can replace app.sandbox.runner.encode_payload), so the server must survive
whatever arrives. Used by the forged-payload suites and by bench/ (a real server, no sandbox).

    app = create_app(settings, pool_factory=ForgedPool.factory(lambda code, trace: b"{...}"))
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from app.sandbox.outcome import RunOutcome

Answer = Callable[[str, Any], bytes]


def payload(snapshot: dict | None = None, **over: Any) -> dict:
    """A well-formed worker payload (the runner's shape) with `snapshot`, fields overridden."""
    empty = {"text": "", "truncated": False}
    base = {
        "ok": True,
        "stdout": dict(empty),
        "stderr": dict(empty),
        "error": None,
        "duration_ms": 1.0,
        "warnings": [],
        "snapshot": {
            "tensors": [],
            "arrays": [],
            "storages": [],
            "graph": {"nodes": [], "edges": []},
            "modules": [],
            "truncated": False,
            **(snapshot or {}),
        },
    }
    return base | over


def encoded(value: Any) -> bytes:
    return json.dumps(value).encode()


class ForgedPool:
    """Stands in for app.sandbox.pool.Pool: run() answers `answer(code, trace)` as the worker's
    raw payload bytes, after `delay_s` (a slow worker, for disconnect and load tests)."""

    def __init__(self, answer: Answer, delay_s: float = 0.0) -> None:
        self.answer = answer
        self.delay_s = delay_s
        self.runs: list[tuple[str, Any]] = []
        self.seeds: list[int] = []  # what the server asked each run to be seeded with
        self.cancelled = 0

    @classmethod
    def factory(cls, answer: Answer, delay_s: float = 0.0) -> Callable[[Any], ForgedPool]:
        return lambda settings: cls(answer, delay_s)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def run(
        self, code: str, *, timeout_s: float | None = None, trace: Any = None, seed: int = 0
    ) -> RunOutcome:
        self.runs.append((code, trace))
        self.seeds.append(seed)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return RunOutcome(
            status="ok",
            payload=self.answer(code, trace),
            signal=None,
            exit_code=None,
            wall_ms=1.0,
            queue_ms=0.0,
            pid=None,
            seed=seed,  # as the real pool: the seed it sent, whatever the payload says
        )

    def health(self) -> dict[str, Any]:
        return {
            "state": "ready",
            "ready": 1,
            "busy": 0,
            "queued": 0,
            "max_concurrent_runs": 4,
            "queue_max": 64,
            "restarts": 0,
            "zygote_pid": None,
            "uid_drop": {"active": False, "reason": "forged pool"},
            "confinement": {"active": [], "missing": {}},
        }


def empty_run_app(**settings: Any) -> Any:
    """The app with these settings over a pool whose every run answers an empty, successful
    payload: for tests of what surrounds a run (headers, forms, pages), not of the run."""
    from app.main import create_app  # here, not at the top: the sandbox tests import this kit too
    from app.settings import Settings

    return create_app(Settings(**settings), pool_factory=ForgedPool.factory(lambda c, t: encoded(payload())))
