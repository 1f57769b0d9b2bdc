"""Shared pieces of the hostile-snippet suites (test_hostile.py, test_hostile_escape.py)."""

from __future__ import annotations

import textwrap
import time

BENIGN = "import torch\nx = torch.arange(4) * 2\nprint(x.tolist())"

TRY = textwrap.dedent("""\
    def attempt(fn):
        try:
            fn()
            print('allowed')
        except OSError as exc:
            print(type(exc).__name__, exc.errno)
""")


def lines(sandbox, code: str, **kwargs) -> list[str]:
    res = sandbox.result(textwrap.dedent(code), **kwargs)
    assert res["error"] is None, res["error"]
    return res["stdout"]["text"].splitlines()


def gone(pid: int, timeout_s: float = 10.0) -> bool:
    """True once pid no longer exists or is a zombie."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return True
        except (FileNotFoundError, ProcessLookupError):  # exited before open, or between open and read
            return True
        time.sleep(0.02)
    return False
