"""The worker->public converter: untrusted payloads in, well-formed responses out."""

import json

import pytest

from app.convert import to_response
from app.sandbox.outcome import RunOutcome
from app.schemas import RunError, RunResponse


def outcome(status="ok", payload=b"", signal=None, exit_code=None, wall_ms=3.25) -> RunOutcome:
    return RunOutcome(
        status=status, payload=payload, signal=signal, exit_code=exit_code, wall_ms=wall_ms, queue_ms=0.0
    )


def error_of(r: RunResponse) -> RunError:
    assert r.error is not None, "the run should have failed"
    return r.error


def _payload(**over) -> bytes:
    base = {
        "ok": True,
        "stdout": {"text": "hi\n", "truncated": False},
        "stderr": {"text": "", "truncated": False},
        "error": None,
        "duration_ms": 1.5,
        "warnings": ["w0"],
        "snapshot": {
            "tensors": [
                {
                    "name": "x",
                    "shape": [2],
                    "dtype": "torch.float32",
                    "device": "cpu",
                    "stride": [1],
                    "storage": "s0",
                }
            ],
            "arrays": [],
            "storages": [
                {
                    "id": "s0",
                    "device": "cpu",
                    "nbytes": 8,
                    "members": [{"name": "x", "kind": "tensor", "byte_range": [0, 8]}],
                }
            ],
            "graph": {"nodes": [], "edges": []},
            "modules": [],
            "truncated": False,
            "warnings": ["w1"],
        },
    }
    base.update(over)
    return json.dumps(base).encode()


def test_ok_payload_is_flattened_into_the_public_shape():
    r = to_response(outcome(payload=_payload()))
    assert r.ok and r.error is None
    assert r.stdout.text == "hi\n"
    assert [t.name for t in r.tensors] == ["x"]
    assert r.storages[0].members[0].byte_range == [0, 8]
    assert r.warnings == ["w0", "w1"]
    assert r.wall_ms == 3.25


def test_snippet_error_in_payload_is_kept_with_the_snapshot():
    err = {
        "type": "ZeroDivisionError",
        "message": "division by zero",
        "line": 2,
        "traceback": [{"line": 2, "function": "<module>", "source": "1/0"}],
    }
    r = to_response(outcome(payload=_payload(ok=False, error=err)))
    assert not r.ok
    assert (error_of(r).type, error_of(r).line) == ("ZeroDivisionError", 2)
    assert error_of(r).traceback[0].source == "1/0"
    assert r.tensors, "the snapshot up to the failure survives"


def test_hard_timeout_without_payload_is_a_time_limit():
    r = to_response(outcome(status="timeout", wall_ms=2500))
    assert not r.ok and error_of(r).type == "TimeLimit"
    assert "2.50 s" in error_of(r).message


def test_cpu_limit_signal_is_a_time_limit_not_a_crash():
    r = to_response(outcome(status="crash", signal="SIGXCPU"))
    assert error_of(r).type == "TimeLimit"


def test_crash_names_the_signal():
    r = to_response(outcome(status="crash", signal="SIGSEGV"))
    assert (error_of(r).type, error_of(r).signal) == ("Crash", "SIGSEGV")
    assert "SIGSEGV" in error_of(r).message


def test_crash_with_exit_code():
    r = to_response(outcome(status="crash", exit_code=3))
    assert (error_of(r).type, error_of(r).exit_code) == ("Crash", 3)
    assert "code 3" in error_of(r).message


def test_sandbox_verdict_overrides_a_half_written_payload():
    r = to_response(outcome(status="result_too_large", payload=_payload()))
    assert not r.ok and error_of(r).type == "OutputLimit" and not r.tensors


def test_garbage_payload_becomes_crash_not_exception():
    for junk in (
        b"\xff\xfe not json",
        b"[1, 2]",
        _payload(ok="maybe", tensors=5),
        _payload(snapshot={"tensors": [{"name": "x"}]}),
    ):
        r = to_response(outcome(payload=junk))
        assert not r.ok and error_of(r).type == "Crash", junk


def test_unknown_fields_from_worker_are_not_echoed():
    r = to_response(outcome(payload=_payload(secret="leak")))
    assert "secret" not in r.model_dump()


def test_step_state_is_a_typed_delta_not_any_object():
    """Step.state was dict[str, Any]: anything passed (three 4-million-entry states added
    ~880 MB). It is a StateDelta now: its entries are tensors like the snapshot's, and a state
    that is a list, or whose entries are not tensors, is a Crash."""
    x = {
        "name": "x",
        "shape": [2],
        "dtype": "torch.float32",
        "device": "cpu",
        "preview": {"values": [1.5, "nan"], "truncated": False},
    }
    step = {"index": 0, "start_line": 1, "end_line": 1, "state": {"tensors": {"keys": ["x"], "set": [x]}}}
    r = to_response(outcome(payload=_payload(steps=[step])))
    assert r.ok
    state = r.steps[0].state
    assert state is not None and state.tensors is not None
    preview = state.tensors.set[0].preview
    assert preview is not None and preview.values == [1.5, "nan"]
    assert state.tensors.keys == ["x"] and state.graph is None
    for bad in (
        [1, 2],
        {"tensors": {"keys": ["x"], "set": [{"name": "x"}]}},
        {"tensors": {"keys": None, "set": "x"}},
        {"tensors": [x]},
    ):
        r = to_response(outcome(payload=_payload(steps=[dict(step, state=bad)])))
        assert (r.ok, error_of(r).type) == (False, "Crash"), bad
        assert error_of(r).message.startswith("the worker sent an invalid result"), bad


def test_gc_is_paused_only_while_converting():
    """to_response pauses the cyclic GC around parse+validate (speed of traced payloads); it must
    restore it, including after a payload that fails validation, and leave it off if it was off."""
    import gc

    try:
        assert gc.isenabled()
        to_response(outcome(payload=_payload()))
        to_response(outcome(payload=_payload(ok="not a bool")))
        assert gc.isenabled()
        gc.disable()
        to_response(outcome(payload=_payload()))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_paused_gc_nests_and_restores_the_previous_state_even_on_error():
    import gc

    from app.convert import paused_gc

    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        with paused_gc():
            with paused_gc():
                assert not gc.isenabled()
            assert not gc.isenabled()  # the inner exit does not re-enable under the outer
            raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


def _invalid(r) -> bool:
    return (
        not r.ok
        and error_of(r).type == "Crash"
        and error_of(r).message.startswith("the worker sent an invalid result")
    )


@pytest.mark.parametrize(
    "junk",
    [
        b"[" * 100_000 + b"]" * 100_000,  # nested 100,000 deep
        b'{"ok": true, "x": "\xed\xa0\x80"}',  # raw surrogate bytes (invalid UTF-8)
        b"[1, 2]",
        b'"a string"',
        b"null",  # not an object
        json.dumps({"ok": True, "stdout": {"text": ""}}).encode(),  # keys missing
        _payload(duration_ms="slow"),
        _payload(warnings="w"),  # wrong types
        _payload(ok=True, error={"type": "x" * 5000}),  # a label past its cap
    ],
)
def test_every_malformed_payload_is_an_invalid_result_crash(junk):
    assert _invalid(to_response(outcome(payload=junk)))


def test_a_478_dimensional_preview_named_with_a_lone_surrogate_is_a_crash_not_a_500():
    """Regression: the lone-surrogate cleaner recursed; a 478-dimensional preview (torch allows
    that many dimensions) named '\\udcff' raised RecursionError in the server."""
    values: object = 1.0
    for _ in range(478):
        values = [values]
    entry = {
        "name": "\udcff",
        "shape": [1] * 478,
        "dtype": "torch.float32",
        "device": "cpu",
        "preview": {"values": values, "truncated": False},
    }
    data = json.dumps(json.loads(_payload()) | {"snapshot": {"tensors": [entry]}}).encode()
    assert b"\\udcff" in data
    assert _invalid(to_response(outcome(payload=data)))


def test_the_surrogate_cleaner_is_iterative_and_cleans_keys_and_values():
    from app.sandbox.outcome import _without_lone_surrogates

    deep: object = "\udcff"
    for _ in range(50_000):
        deep = [deep]
    cleaned = _without_lone_surrogates({"k\ud800": ["v\udc00", {"n": 1, "ok": [None, 2.5]}], "deep": deep})
    assert list(cleaned) == ["k?", "deep"] and cleaned["k?"] == ["v?", {"n": 1, "ok": [None, 2.5]}]
    cleaned = cleaned["deep"]
    for _ in range(50_000):
        cleaned = cleaned[0]
    assert cleaned == "?"


def test_paused_gc_from_several_threads_restores_the_gc_once_all_have_left():
    """Conversions run in threads now (off the event loop), so two may overlap: the GC must come
    back when the last leaves, not when the first does, and not stay off."""
    import gc
    import threading

    from app.convert import paused_gc

    inside, release = threading.Barrier(3), threading.Event()

    def worker():
        with paused_gc():
            inside.wait()
            release.wait()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        inside.wait()
        assert not gc.isenabled()
        release.set()
        for t in threads:
            t.join()
        assert gc.isenabled()
    finally:
        gc.enable()


def test_a_big_result_is_encoded_in_pieces_as_the_whole_would_be(monkeypatch):
    """encode_run splices slices of each big list: its JSON is model_dump_json's."""
    import app.encode_pieces as E

    monkeypatch.setattr(E, "SLICE_ITEMS", 2)
    x = json.loads(_payload())["snapshot"]["tensors"][0]
    state = {"tensors": {"keys": ["x"], "set": [x] * 5}, "graph": {"nodes": [], "edges": []}}
    steps = [
        {"index": i, "start_line": 1, "end_line": 1, "state": state if i % 2 else None} for i in range(5)
    ]
    r = to_response(outcome(payload=_payload(steps=steps)))
    assert r.ok, r.error
    assert json.loads(E.encode_run(r)) == json.loads(r.model_dump_json())


def test_dismantle_frees_what_it_owns_and_leaves_what_others_hold():
    from app.encode_pieces import dismantle

    shared = [1, [2, 3]]
    owned = {"a": [shared, {"b": [4]}], "c": shared}
    box = [owned]
    del owned
    dismantle(box)
    assert box == [] and shared == [1, [2, 3]]


def test_the_web_process_does_not_import_torch():
    """The server validates and draws plain data; torch (hundreds of MiB) stays in the workers.
    It used to come in through app.web.timeline -> app.inspector.diff -> the encoder."""
    import subprocess
    import sys
    from pathlib import Path

    probe = "import sys, app.main; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.stdout.strip() == "False"
