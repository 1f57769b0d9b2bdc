"""deploy/replicas.sh's failure path: a start that cannot finish says why and leaves nothing
running (the balancer tests cover the working path)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.deploy.stack import SCRIPT, is_alive


def test_a_replica_that_cannot_start_fails_the_start_and_stops_the_rest(tmp_path: Path):
    env = {**os.environ, "TP_MAX_CONCURRENT_RUNS": "0"}  # Settings refuses it: uvicorn exits
    done = subprocess.run(
        ["bash", str(SCRIPT), "start", "--replicas", "1", "--port", "0", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "replica 0 exited" in done.stderr and "max_concurrent_runs" in done.stderr
    for name in ("nginx.pid", "healthcheck.pid", "replica-0.pid"):
        pid_file = tmp_path / name  # nginx removes its own as it exits
        assert not pid_file.exists() or not is_alive(int(pid_file.read_text())), name
    assert (tmp_path / "nginx.port").exists()  # nginx had been started: it was stopped again
