"""The worker->public converter: untrusted payloads in, well-formed responses out."""
import json
from dataclasses import dataclass

from app.convert import to_response


@dataclass
class FakeOutcome:
    status: str = "ok"
    payload: bytes = b""
    signal: str | None = None
    exit_code: int | None = None
    wall_ms: float = 3.25


def _payload(**over) -> bytes:
    base = {"ok": True, "stdout": {"text": "hi\n", "truncated": False},
            "stderr": {"text": "", "truncated": False}, "error": None, "duration_ms": 1.5,
            "snapshot": {"tensors": [{"name": "x", "shape": [2], "dtype": "torch.float32",
                                      "device": "cpu", "stride": [1], "storage": "s0"}],
                         "arrays": [], "storages": [{"id": "s0", "device": "cpu", "nbytes": 8,
                                                     "members": [{"name": "x", "kind": "tensor",
                                                                  "byte_range": [0, 8]}]}],
                         "graph": {"nodes": [], "edges": []}, "modules": [],
                         "truncated": False, "warnings": ["w1"]}}
    base.update(over)
    return json.dumps(base).encode()


def convert(outcome):
    return to_response(outcome, exec_timeout_s=2.0, result_max_bytes=1 << 20)


def test_ok_payload_is_flattened_into_the_public_shape():
    r = convert(FakeOutcome(payload=_payload()))
    assert r.ok and r.error is None
    assert r.stdout.text == "hi\n"
    assert [t.name for t in r.tensors] == ["x"]
    assert r.storages[0].members[0].byte_range == [0, 8]
    assert r.warnings == ["w1"]
    assert r.wall_ms == 3.25


def test_snippet_error_in_payload_is_kept():
    err = {"type": "ZeroDivisionError", "message": "division by zero", "line": 2,
           "traceback": [{"line": 2, "function": "<module>", "source": "1/0"}]}
    r = convert(FakeOutcome(payload=_payload(ok=False, error=err)))
    assert not r.ok
    assert (r.error.type, r.error.line) == ("ZeroDivisionError", 2)
    assert r.tensors, "the snapshot up to the failure survives"


def test_hard_timeout_without_payload_is_a_time_limit():
    r = convert(FakeOutcome(status="timeout"))
    assert not r.ok and r.error.type == "TimeLimit"
    assert "2 s" in r.error.message


def test_crash_names_the_signal():
    r = convert(FakeOutcome(status="crash", signal="SIGSEGV"))
    assert (r.error.type, r.error.signal) == ("Crash", "SIGSEGV")
    assert "SIGSEGV" in r.error.message


def test_crash_with_exit_code():
    r = convert(FakeOutcome(status="crash", exit_code=3))
    assert r.error.type == "Crash" and "code 3" in r.error.message


def test_sandbox_verdict_overrides_a_half_written_payload():
    r = convert(FakeOutcome(status="output_limit", payload=_payload()))
    assert not r.ok and r.error.type == "OutputLimit"


def test_garbage_payload_becomes_crash_not_exception():
    for junk in (b"\xff\xfe not json", b"[1, 2]", b'{"ok": "maybe", "tensors": 5}'):
        r = convert(FakeOutcome(payload=junk))
        assert not r.ok and r.error.type == "Crash", junk


def test_oversized_payload_is_refused_before_parsing():
    r = to_response(FakeOutcome(payload=b"{" + b" " * 5000 + b"}"), exec_timeout_s=1,
                    result_max_bytes=1024)
    assert not r.ok and "result_max_bytes" in r.error.message


def test_unknown_fields_from_worker_are_not_echoed():
    r = convert(FakeOutcome(payload=_payload(secret="leak")))
    assert "secret" not in r.model_dump()
