"""The runs kept for the pages' next requests: bounded in bytes (the JSON kept), not entries."""

from __future__ import annotations

from app.schemas import RunResponse, Step
from app.web.run_cache import ENTRY_OVERHEAD_BYTES, RunCache, needed

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


def _kept(cache: RunCache, code: str, resp: RunResponse) -> str:
    """The token `resp` is kept under: these runs have a step, so the cache keeps them."""
    token = cache.put(code, resp)
    assert token is not None, "the run was not kept"
    return token


def _size(resp: RunResponse, code: str) -> int:
    return len(resp.model_dump_json().encode()) + len(code) + ENTRY_OVERHEAD_BYTES


def test_the_cache_is_bounded_in_bytes_and_evicts_the_least_recently_used():
    """Regression: the cache kept 64 whole responses whatever their size (three forged
    4-million-entry states held ~880 MB)."""
    big = _run("x" * 10_000)
    cache = RunCache(max_bytes=3 * _size(big, "a"), idle_s=60)
    first, second, third = (_kept(cache, c, big) for c in "abc")
    assert cache.nbytes == 3 * _size(big, "a") and len(cache) == 3
    assert cache.get(first, "a") is not None  # first is now the most recent
    cache.put("d", big)
    assert cache.get(second, "b") is None  # the least recently used went
    assert cache.get(first, "a") is not None and cache.get(third, "c") is not None
    assert cache.nbytes <= cache.max_bytes


def test_a_run_bigger_than_the_whole_budget_is_not_kept():
    cache = RunCache(max_bytes=5_000, idle_s=60)
    small = _kept(cache, "a", _run())
    assert cache.put("b", _run("x" * 10_000)) is None
    assert cache.get(small, "a") is not None and len(cache) == 1


def test_a_run_idle_too_long_is_dropped():
    clock = Clock()
    cache = RunCache(max_bytes=1 << 20, idle_s=10, clock=clock)
    old = _kept(cache, "a", _run())
    clock.now = 6
    fresh = _kept(cache, "b", _run())
    clock.now = 11
    assert cache.get(old, "a") is None and cache.get(fresh, "b") is not None
    clock.now = 20  # b was used at 11: still wanted
    assert cache.get(fresh, "b") is not None
    assert cache.nbytes == _size(_run(), "b")


def test_get_checks_the_code_and_gives_back_an_equal_run():
    cache = RunCache(max_bytes=1 << 20, idle_s=60)
    resp = _run("hello")
    token = _kept(cache, "code", resp)
    assert cache.get(token, "other code") is None
    assert cache.get(token, "code") == resp and cache.get(token, None) == resp
    assert cache.get("no such token", None) is None


def test_a_run_nothing_can_ask_about_is_not_kept():
    """No steps and at most one tensor: no timeline and no diagram drawn on demand."""
    one = RunResponse.model_validate(
        {"ok": True, "tensors": [{"name": "x", "shape": [2], "dtype": "torch.float32", "device": "cpu"}]}
    )
    two = one.model_copy(update={"tensors": one.tensors * 2})
    assert not needed(one) and needed(two) and needed(_run())
    cache = RunCache(max_bytes=1 << 20, idle_s=60)
    assert cache.put("x", one) is None and cache.put("x", two) is not None


def test_a_kept_run_that_does_not_read_back_is_a_miss_and_is_dropped():
    """Not a 500: the page runs the code again."""
    cache = RunCache(max_bytes=1 << 20, idle_s=60)
    token = _kept(cache, "a", _run())
    entry = cache._runs[token]
    wrong = b'{"ok": "maybe"}'.ljust(len(entry.body))  # same size, so the count holds
    cache._runs[token] = type(entry)(entry.code, wrong, entry.used_at)
    assert cache.get(token, "a") is None
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
    token = _kept(cache, "code", resp)
    back = cache.get(token, "code")
    assert calls and calls[0] > json_pieces.WHOLE_BYTES_MAX, "read back by the parser in pieces"
    assert back == resp
