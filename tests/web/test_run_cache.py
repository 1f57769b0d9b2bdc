"""The step runs kept by content: bounded in bytes (the JSON kept), keyed by what changes the
answer, never needed for a right one."""

from __future__ import annotations

from app.schemas import RunResponse, Step
from app.settings import Settings
from app.web.run_cache import ENTRY_OVERHEAD_BYTES, RunCache, content_key, settings_context

TENSORS = 50


def _run(stdout: str = "") -> RunResponse:
    """A run a page can step through (one step), its size set by its stdout."""
    return RunResponse.model_validate(
        {"ok": True, "stdout": {"text": stdout}, "steps": [Step(index=0, start_line=1, end_line=1)]}
    )


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _kept(cache: RunCache, key: str, resp: RunResponse) -> str:
    assert cache.put(key, resp), "the run was not kept"
    return key


def _size(resp: RunResponse) -> int:
    return len(resp.model_dump_json().encode()) + ENTRY_OVERHEAD_BYTES


def test_the_cache_is_bounded_in_bytes_and_evicts_the_least_recently_used():
    """Regression: the cache kept 64 whole responses whatever their size (three forged
    4-million-entry states held ~880 MB)."""
    big = _run("x" * 10_000)
    cache = RunCache(max_bytes=3 * _size(big), idle_s=60)
    first, second, third = (_kept(cache, c, big) for c in "abc")
    assert cache.nbytes == 3 * _size(big) and len(cache) == 3
    assert cache.get(first) is not None  # first is now the most recent
    cache.put("d", big)
    assert cache.get(second) is None  # the least recently used went
    assert cache.get(first) is not None and cache.get(third) is not None
    assert cache.nbytes <= cache.max_bytes


def test_a_key_put_again_replaces_its_run_and_is_counted_once():
    cache = RunCache(max_bytes=1 << 20, idle_s=60)
    cache.put("k", _run("old"))
    cache.put("k", _run("new"))
    back = cache.get("k")
    assert back is not None and back.stdout.text == "new"
    assert len(cache) == 1 and cache.nbytes == _size(_run("new"))


def test_a_run_bigger_than_the_whole_budget_is_not_kept_and_a_zero_budget_keeps_none():
    cache = RunCache(max_bytes=5_000, idle_s=60)
    small = _kept(cache, "a", _run())
    assert not cache.put("b", _run("x" * 10_000))
    assert cache.get(small) is not None and len(cache) == 1
    off = RunCache(max_bytes=0, idle_s=60)
    assert not off.put("a", _run()) and len(off) == 0 and off.get("a") is None


def test_a_run_idle_too_long_is_dropped():
    clock = Clock()
    cache = RunCache(max_bytes=1 << 20, idle_s=10, clock=clock)
    old = _kept(cache, "a", _run())
    clock.now = 6
    fresh = _kept(cache, "b", _run())
    clock.now = 11
    assert cache.get(old) is None and cache.get(fresh) is not None
    clock.now = 20  # b was used at 11: still wanted
    assert cache.get(fresh) is not None
    assert cache.nbytes == _size(_run())


def test_get_gives_back_an_equal_run_and_clear_empties():
    cache = RunCache(max_bytes=1 << 20, idle_s=60)
    resp = _run("hello")
    key = _kept(cache, "k", resp)
    assert cache.get(key) == resp and cache.get("no such key") is None
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0 and cache.get(key) is None


def test_the_key_is_the_content_and_differs_with_anything_that_changes_the_answer():
    """Any replica computes the same key for the same request: no randomness, no process state."""
    context = settings_context(Settings())
    wire = {"outline": True, "state_at": 3}
    key = content_key("x = 1", wire, context)
    assert key == content_key("x = 1", dict(reversed(wire.items())), settings_context(Settings()))
    assert (
        len(
            {
                key,
                content_key("x = 2", wire, context),
                content_key("x = 1", {"outline": True, "state_at": 4}, context),
                content_key("x = 1", None, context),
                content_key("x = 1", wire, settings_context(Settings(exec_timeout_s=1.5))),
            }
        )
        == 5
    )


def test_a_kept_run_that_does_not_read_back_is_a_miss_and_is_dropped():
    """Not a 500: the page runs the code again."""
    cache = RunCache(max_bytes=1 << 20, idle_s=60)
    key = _kept(cache, "a", _run())
    entry = cache._runs[key]
    wrong = b'{"ok": "maybe"}'.ljust(len(entry.body))  # same size, so the count holds
    cache._runs[key] = type(entry)(wrong, entry.used_at)
    assert cache.get(key) is None
    assert len(cache) == 0 and cache.nbytes == 0


def test_a_kept_run_over_a_mebibyte_is_read_back_in_pieces_and_whole(monkeypatch):
    """Regression: a kept 9 MiB run was parsed back in one call, which held the GIL for the
    whole parse (/api/health waited ~130 ms behind a slider move on it)."""
    from app.sandbox import json_pieces

    tensors = [
        {
            "name": f"t{i}",
            "shape": [2],
            "dtype": "torch.float32",
            "device": "cpu",
            "stride": [1],
            "storage_offset": 0,
            "numel": 2,
            "element_size": 4,
            "nbytes": 8,
            "flags": ["x" * 20],
        }
        for i in range(TENSORS)
    ]
    resp = RunResponse.model_validate(
        {
            "ok": True,
            "stdout": {"text": "y" * (2 << 20)},
            "tensors": tensors,
            "steps": [Step(index=0, start_line=1, end_line=1)],
        }
    )
    calls: list[int] = []
    real = json_pieces.loads

    def counted(data):
        calls.append(len(data))
        return real(data)

    monkeypatch.setattr(json_pieces, "loads", counted)
    cache = RunCache(max_bytes=64 << 20, idle_s=60)
    key = _kept(cache, "k", resp)
    back = cache.get(key)
    assert calls and calls[0] > json_pieces.WHOLE_BYTES_MAX, "read back by the parser in pieces"
    assert back == resp


def test_a_drawing_is_kept_in_the_same_budget_apart_from_the_runs():
    cache = RunCache(max_bytes=1 << 20, idle_s=60)
    cache.put("k", _run())
    assert cache.put_html("k", "<p>é</p>")
    assert cache.get_html("k") == "<p>é</p>" and cache.get("k") == _run()  # two entries, one key
    assert cache.nbytes == _size(_run()) + len("<p>é</p>".encode()) + ENTRY_OVERHEAD_BYTES
    assert cache.get_html("other") is None
    assert not RunCache(max_bytes=100, idle_s=60).put_html("k", "x" * 200)
