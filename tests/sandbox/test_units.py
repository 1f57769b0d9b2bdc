"""In-process unit tests of the sandbox's pure pieces: framing, capped output, payload encoding,
limits (de)serialisation."""

from __future__ import annotations

import json
import os
from typing import Any, cast

import pytest

from app.sandbox.limits import SandboxLimits
from app.sandbox.output import CappedWriter, OutputLimit
from app.sandbox.protocol import (
    FrameDecoder,
    FrameError,
    FrameTooLarge,
    encode_frame,
    read_frame,
    write_frame,
)
from app.sandbox.runner import encode_payload


def test_frame_is_big_endian_length_then_bytes():
    assert encode_frame(b"abc") == b"\x00\x00\x00\x03abc"


def test_decoder_reassembles_frames_split_anywhere():
    stream = encode_frame(b"first") + encode_frame(b"") + encode_frame(b"x" * 300)
    decoder = FrameDecoder(max_size=1000)
    frames = []
    for i in range(len(stream)):
        frames += decoder.feed(stream[i : i + 1])
    assert frames == [b"first", b"", b"x" * 300]
    assert decoder.buffered == 0


def test_decoder_rejects_an_oversized_header_before_its_body():
    decoder = FrameDecoder(max_size=10)
    with pytest.raises(FrameTooLarge) as info:
        decoder.feed((11).to_bytes(4, "big"))
    assert (info.value.size, info.value.max_size) == (11, 10)


def test_blocking_read_frame_roundtrip_and_limits():
    r, w = os.pipe()
    try:
        write_frame(w, b"payload")
        write_frame(w, b"too long")
        assert read_frame(r, 100) == b"payload"
        with pytest.raises(FrameTooLarge):
            read_frame(r, 4)
        os.close(w)
        w = -1
        os.read(r, 100)  # drain the unread body
        with pytest.raises(FrameError):
            read_frame(r, 100)  # EOF instead of a header
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_capped_writer_keeps_prefix_counts_rest_and_aborts():
    w = CappedWriter(keep_bytes=5, abort_bytes=12)
    w.write("héllo world")  # é is two bytes in UTF-8
    assert w.result() == {"text": "héll", "truncated": True}
    with pytest.raises(OutputLimit):
        w.write("!")
    with pytest.raises(OutputLimit):  # and again: catching it does not reopen the stream
        w.write("!")


def test_capped_writer_exact_fit_is_not_truncated():
    w = CappedWriter(keep_bytes=3, abort_bytes=100)
    w.write("abc")
    assert w.result() == {"text": "abc", "truncated": False}


def _payload(snapshot, text="hi"):
    out = {"text": text, "truncated": False}
    return {
        "ok": True,
        "stdout": out,
        "stderr": dict(out),
        "error": None,
        "duration_ms": 1.0,
        "snapshot": snapshot,
        "warnings": [],
    }


def test_payload_that_fits_is_kept_whole():
    payload = _payload({"tensors": []})
    assert json.loads(encode_payload(payload, 10_000)) == payload


def test_payload_too_big_drops_the_snapshot_with_a_warning():
    data = json.loads(encode_payload(_payload({"blob": "z" * 5000}), 1000))
    assert data["ok"] is True and data["snapshot"] is None
    assert data["warnings"][0].startswith("snapshot dropped: result was ")


def test_unencodable_snapshot_is_dropped_with_a_warning():
    data = json.loads(encode_payload(_payload({"v": object()}), 10_000))
    assert data["snapshot"] is None
    assert "not JSON-encodable" in data["warnings"][0]


def test_a_stray_non_finite_float_becomes_null_not_invalid_json():
    """jsonval turns non-finite floats into strings; one that slips past it must still give
    strict JSON (orjson writes null; json.dumps(allow_nan=False) would have raised)."""
    raw = encode_payload(_payload({"v": float("nan"), "w": [float("-inf")]}), 10_000)
    assert b"NaN" not in raw and b"Infinity" not in raw
    assert json.loads(raw)["snapshot"] == {"v": None, "w": [None]}


def test_payload_too_big_even_without_snapshot_becomes_output_limit():
    data = json.loads(encode_payload(_payload(None, text="y" * 5000), 1000))
    assert (data["ok"], data["error"]["type"]) == (False, "OutputLimit")
    assert data["stdout"] == {"text": "", "truncated": True}


def test_limits_roundtrip_and_ignore_unknown_keys():
    limits = SandboxLimits(exec_timeout_s=2.5, sandbox_uid=1234)
    assert SandboxLimits.from_dict({**limits.to_dict(), "from_the_future": 1}) == limits


def test_limits_reject_unknown_memory_mode():
    with pytest.raises(ValueError):
        SandboxLimits(memory_rlimit=cast(Any, "rss"))  # not a mode: refused at run time


def test_warm_up_ignores_the_snippets_exec_timeout():
    # Regression: the warm-up ran under exec_timeout_s; on a loaded box the timer fired inside a
    # lazy import and every child inherited a half-imported sympy ("module 'sympy' has no
    # attribute 'printing'" from torch.optim.SGD in three lesson examples).
    from app.sandbox import zygote

    assert zygote._warm_up(SandboxLimits(exec_timeout_s=0.000001)) is None


def test_failed_warm_up_is_reported_not_served(monkeypatch):
    from app.sandbox import zygote

    monkeypatch.setattr(zygote, "WARMUP_SNIPPET", "import torch\n1 / 0\n")
    reason = zygote._warm_up(SandboxLimits())
    assert reason is not None and "ZeroDivisionError" in reason


def _recorded_warm_up(monkeypatch) -> list[tuple[str, str]]:
    from app.sandbox import zygote

    runs: list[tuple[str, str]] = []

    def run(code, limits, trace=False):
        runs.append((code, json.dumps(trace)))
        return b'{"ok": true}'

    monkeypatch.setattr(zygote, "run_snippet", run)
    assert zygote._warm_up(SandboxLimits(exec_timeout_s=0.5)) is None
    return runs


def test_warm_up_runs_every_lesson_example_plain_and_stepped_both_ways(monkeypatch):
    import textwrap

    from app.examples import EXAMPLES

    runs = _recorded_warm_up(monkeypatch)
    for code in [textwrap.dedent(e.code) for e in EXAMPLES] + [zygote_snippet()]:
        modes = {trace for c, trace in runs if c == code}
        assert modes == {"false", "true", '{"states": false}'}, code[:40]


def zygote_snippet() -> str:
    from app.sandbox import zygote

    return zygote.WARMUP_SNIPPET


def test_warm_up_skips_the_lessons_on_a_cuda_build(monkeypatch):
    # Their backward() would start the autograd engine's device threads in the zygote, and every
    # forked child would then be a "bad autograd fork".
    import torch

    monkeypatch.setattr(torch.version, "cuda", "12.4")
    from app.sandbox import zygote

    assert {code for code, _ in _recorded_warm_up(monkeypatch)} == {zygote.WARMUP_SNIPPET}


def test_warm_up_leaves_torch_as_a_fresh_import_would(monkeypatch):
    # The zygote's global state is every child's: a lesson that turns grad off, seeds or changes
    # the default dtype, then fails before undoing it, must not leak into every run.
    import torch

    import app.examples
    from app.examples import Example
    from app.sandbox import zygote

    leaky = Example(
        "leaky",
        "t",
        "l",
        "c",
        "import torch\ntorch.manual_seed(123)\n"
        "torch.set_grad_enabled(False)\ntorch.set_default_dtype(torch.float64)\n"
        "torch.set_printoptions(precision=1)\n1 / 0\n",
    )
    monkeypatch.setattr(app.examples, "EXAMPLES", [leaky])
    seed = torch.initial_seed()
    expected = torch.randn(3, generator=torch.Generator().manual_seed(seed))
    try:
        assert zygote._warm_up(SandboxLimits(exec_timeout_s=30.0)) is None
        assert torch.is_grad_enabled() and torch.get_default_dtype() == torch.float32
        assert torch.initial_seed() == seed and torch.equal(torch.randn(3), expected)
        assert torch._tensor_str.PRINT_OPTS.precision == 4
    finally:
        zygote._reset_torch_state(seed)


def test_lesson_examples_in_the_zygote_leave_children_working():
    # The examples call backward() and optimizer steps in the zygote: a forked child must still
    # run autograd (a CPU build starts no device threads, so no bad fork).
    from app.sandbox import zygote
    from app.sandbox.runner import run_snippet

    zygote._warm_up_lessons(SandboxLimits(exec_timeout_s=30.0))
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            code = "import torch\nw = torch.ones(3, requires_grad=True)\n(w * 2).sum().backward()\n"
            payload = json.loads(run_snippet(code, SandboxLimits(exec_timeout_s=30.0)))
            grad = payload["snapshot"]["tensors"][0]["grad"] if payload["ok"] else payload["error"]
            os.write(write_fd, json.dumps([payload["ok"], grad]).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    answer = json.loads(os.read(read_fd, 65536))
    os.waitpid(pid, 0)
    assert answer == [True, "w.grad"]


@pytest.mark.parametrize("message", ["std::bad_alloc", "DefaultCPUAllocator: can't allocate memory"])
def test_allocator_failures_surface_as_memory_limit(message):
    # Regression: torch reports some allocation failures as RuntimeError("std::bad_alloc"),
    # which showed the user a RuntimeError instead of the MemoryLimit they hit.
    from app.sandbox.runner import describe_error

    assert describe_error(RuntimeError(message), [])["type"] == "MemoryLimit"


def test_ordinary_runtime_errors_stay_themselves():
    from app.sandbox.runner import describe_error

    assert describe_error(RuntimeError("view size is not compatible"), [])["type"] == "RuntimeError"
