"""Framing shared by the server, the zygote and the children.

Wire format: every message is one frame = a 4-byte big-endian unsigned length N followed by
exactly N bytes. Nothing else ever travels on these pipes.

server -> zygote (zygote's stdin):
  1. config frame (JSON): {"limits": SandboxLimits.to_dict(), "spares": int}
  2. request frames (JSON): {"id": int, "code": str, "timeout_s": float | null, "seed"?: int
     (0 <= seed < SEED_END; 0 when absent: what the child seeds torch, numpy and random with),
     "trace"?: true |
     TraceOptions.to_wire() (app.sandbox.trace_options: unknown keys are refused),
     "precompiled"?: app.sandbox.instrument.precompile(code)}
     or a diagnostic request {"id": int, "op": "diag"}
     or a cancel request {"id": int, "op": "cancel"}: the server gave up on run `id` (its client
     left); the zygote kills that run's process group and answers with status "cancelled"
     (also when the run had finished already: the server waits for that answer)
zygote -> server (a dup of the zygote's original stdout; fd 1 itself goes to stderr):
  1. ready frame (JSON): {"type": "ready", "pid", "vm_size", "uid_drop": {"active", "reason"},
     "memory_rlimit", "cuda_initialized", "python", "torch", "confinement": {"active": [layer],
     "missing": {layer: why}, "landlock_abi", "layers"}}; or {"type": "fatal", "reason"}
  2. per request: a header frame (JSON) {"id", "status", "signal", "exit_code", "wall_ms", "pid",
     "spares_idle"} then one raw payload frame (the child's bytes, possibly empty; never parsed
     by the zygote because it is untrusted). status: "ok" | "timeout" | "crash" |
     "result_too_large" | "error" (the zygote could not run it; reason in the payload) |
     "cancelled" (the answer to a cancel request; empty payload).
zygote -> child (job pipe): one JSON frame {"code": str, "limits": SandboxLimits.to_dict(),
  "seed": int, "trace": as requested or null, "precompiled": as requested or null}
child -> zygote (result pipe): one frame, the payload JSON (see app.sandbox.runner).
"""

from __future__ import annotations

import os
import struct

HEADER = struct.Struct(">I")
FRAME_MAX_BYTES = 2**32 - 1
# A run's seed is below this: numpy.random.seed takes nothing larger (torch and random would).
SEED_END = 2**32


class FrameError(Exception):
    """Bad or truncated framing (peer died mid-frame, or a frame over the size cap)."""


class FrameTooLarge(FrameError):
    def __init__(self, size: int, max_size: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds the cap of {max_size} bytes")
        self.size = size
        self.max_size = max_size


def encode_frame(data: bytes) -> bytes:
    if len(data) > FRAME_MAX_BYTES:
        raise FrameTooLarge(len(data), FRAME_MAX_BYTES)
    return HEADER.pack(len(data)) + data


def write_frame(fd: int, data: bytes) -> None:
    """Write one frame to a blocking fd (loops over short writes)."""
    view = memoryview(encode_frame(data))
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_exactly(fd: int, size: int) -> bytes:
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise FrameError("end of file inside a frame")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, max_size: int) -> bytes:
    """Read exactly one frame from a blocking fd; FrameTooLarge before reading a big body."""
    (size,) = HEADER.unpack(_read_exactly(fd, HEADER.size))
    if size > max_size:
        raise FrameTooLarge(size, max_size)
    return _read_exactly(fd, size)


class FrameDecoder:
    """Incremental decoder for non-blocking reads: feed() bytes, get complete frames back.

    Raises FrameTooLarge as soon as a header announces more than max_size, so the caller can
    stop reading without buffering the oversized body.
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buf = bytearray()
        self._need: int | None = None  # body size of the frame being read, once known

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        frames: list[bytes] = []
        while True:
            if self._need is None:
                if len(self._buf) < HEADER.size:
                    return frames
                (self._need,) = HEADER.unpack_from(self._buf)
                del self._buf[: HEADER.size]
                if self._need > self.max_size:
                    raise FrameTooLarge(self._need, self.max_size)
            if len(self._buf) < self._need:
                return frames
            frames.append(bytes(self._buf[: self._need]))
            del self._buf[: self._need]
            self._need = None
