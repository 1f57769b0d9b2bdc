"""The one free_port() that the test servers, the benches and scripts/image_check.py share.

Standard library only: scripts/image_check.py imports it with the host's python3, before or
without the project's virtualenv.
"""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback TCP port nothing listens on now (the kernel's pick; a race with another
    process binding it before the caller does is possible, and harmless in tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
