"""The cyclic GC around a page run: paused from the conversion until the drawing has freed the
run, and never off for good."""

from __future__ import annotations

import gc
import weakref

from app import convert
from app.convert import paused_gc
from app.main import create_app
from app.settings import Settings
from app.web import pages
from tests.forged_kit import ForgedPool, encoded, payload
from tests.webserver import client_for

TENSOR = {"name": "x", "shape": [2], "dtype": "torch.float32", "device": "cpu"}


def test_the_gc_stays_paused_between_a_page_runs_conversion_and_its_drawing(monkeypatch):
    """Regression: the GC came back on the event loop between service.run's conversion and the
    drawing thread, and its first pass walked the whole fresh run holding the GIL (/api/health
    waited ~0.1 s behind a 9 MiB run)."""
    seen: list[bool] = []
    real = pages.off_loop

    async def recording(request, fn, *args):
        seen.append(gc.isenabled())
        return await real(request, fn, *args)

    monkeypatch.setattr(pages, "off_loop", recording)
    app = create_app(
        Settings(),
        pool_factory=ForgedPool.factory(lambda code, trace: encoded(payload({"tensors": [TENSOR]}))),
    )
    with client_for(app) as client:
        assert client.post("/fragments/run", data={"code": "x = 1"}).status_code == 200
        assert client.get("/").status_code == 200
        assert gc.isenabled(), "the hold is released once the route is done"
    assert seen == [False, False]


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_a_pause_held_past_its_limit_collects_once_when_the_next_pauser_comes_in(monkeypatch):
    """Overlapping pauses must not starve the collector: cyclic garbage made during a long pause
    is collected by the next pauser once the pause has lasted GC_PAUSE_MAX_S."""
    assert gc.isenabled()
    with paused_gc():
        junk = _Cycle()
        ref = weakref.ref(junk)
        del junk
        with paused_gc():
            assert ref() is not None, "within the limit nothing collects"
        monkeypatch.setattr(convert, "GC_PAUSE_MAX_S", 0.0)
        with paused_gc():
            assert ref() is None, "past the limit the next pauser collected the cycle"
            assert not gc.isenabled()
    assert gc.isenabled()
