"""Capped stand-ins for sys.stdout / sys.stderr inside the child."""

from __future__ import annotations

import io


class OutputLimit(BaseException):
    """Raised inside the snippet once it writes more than output_abort_bytes in total."""


class CappedWriter(io.TextIOBase):
    """Keeps the first `keep_bytes` bytes (UTF-8) written, counts the rest, and raises
    OutputLimit on every write once the total passes `abort_bytes` (so a snippet that catches
    it and keeps printing still gets nowhere, and memory stays bounded)."""

    def __init__(self, keep_bytes: int, abort_bytes: int) -> None:
        super().__init__()
        self._keep = keep_bytes
        self._abort = abort_bytes
        self._buf = bytearray()
        self.total_bytes = 0
        self._closed_to_snippet = False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if self._closed_to_snippet:
            return len(text)  # a thread of the snippet still printing after the run: dropped
        data = text.encode("utf-8", "replace")
        room = self._keep - len(self._buf)
        if room > 0:
            self._buf += data[:room]
        self.total_bytes += len(data)
        if self.total_bytes > self._abort:
            raise OutputLimit(f"output exceeded output_abort_bytes={self._abort}")
        return len(text)

    def flush(self) -> None:
        pass

    def close_to_snippet(self) -> None:
        self._closed_to_snippet = True

    def result(self) -> dict:
        # errors="ignore": the cut may split a multi-byte character at the end
        text = self._buf.decode("utf-8", "ignore")
        return {"text": text, "truncated": self.total_bytes > len(self._buf)}
