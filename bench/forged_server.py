"""The real app, served with a worker that answers forged payloads (bench.hostile_payloads)
instead of running code: the snippet's text names the payload ("wide", "churning-200x40", and
anything after a colon only makes the code distinct), so a bench drives the whole server with
hostile results and no sandbox.

    .venv/bin/python -m uvicorn bench.forged_server:app --port 8001
"""

from __future__ import annotations

from app.main import create_app
from app.settings import Settings
from bench.hostile_payloads import all_payloads
from tests.forged_kit import ForgedPool

PAYLOADS = {f.name: f.body for f in all_payloads()}


def answer(code: str, trace) -> bytes:
    return PAYLOADS[code.partition(":")[0]]


app = create_app(Settings(), pool_factory=ForgedPool.factory(answer))
