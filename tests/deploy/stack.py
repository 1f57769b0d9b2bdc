"""A real balanced stack for tests and benches: deploy/replicas.sh's nginx in front of N uvicorn
replicas, each with its own zygote, in a temporary folder.

    with balanced_stack(replicas=3) as stack:
        httpx.post(stack.url + "/api/run", json={"code": "x = 1"}).headers["x-upstream"]
        stack.kill(1)            # SIGKILL replica 1's uvicorn and its zygote tree (a crash)
        stack.start(1)           # the same replica again, on its old port
        stack.wait_healthy()     # every replica back in nginx's upstream list
        stack.access_log()       # nginx's lines: status and upstream_addr per request

A replica's ``addr`` is what nginx's ``X-Upstream`` header and ``$upstream_addr`` name it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import httpx

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "replicas.sh"
START_TIMEOUT_S = 240.0  # three torch imports on two busy cores, with room to spare
# nginx closes its idle keep-alive connections when a reload (the health checker's) retires a
# worker; a request sent on one just then meets a closed connection and never reaches a replica.
# Browsers resend such a request once on a fresh connection (a reused socket that failed before
# any answer); clients of the stack do the same on these errors.
CLOSED_UNDER_US = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)


def load_healthcheck() -> ModuleType:
    """deploy/healthcheck.py as a module (deploy/ is no package: the file runs standalone)."""
    spec = importlib.util.spec_from_file_location("deploy_healthcheck", ROOT / "deploy" / "healthcheck.py")
    assert spec and spec.loader
    module = sys.modules.get(spec.name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while it executes
        spec.loader.exec_module(module)
    return module


class AccessEntry(NamedTuple):
    """One line of nginx's access log (log_format `upstreams` in deploy/nginx.conf.template)."""

    msec: float  # time.time() when nginx finished the request
    method: str
    uri: str
    status: int
    upstream_addr: str  # "" when no replica was tried; "a, b" after a retry
    upstream_status: str
    request_time: float

    @property
    def tried(self) -> list[str]:
        return [a.strip() for a in self.upstream_addr.split(",") if a.strip()]


@dataclass(frozen=True)
class Replica:
    index: int
    port: int
    dir: Path

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.addr}"

    @property
    def pid(self) -> int:
        """The uvicorn process now (a restart gives a new one)."""
        return int((self.dir / f"replica-{self.index}.pid").read_text())


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        ppid = int(stat.rpartition(")")[2].split()[1])  # after the (comm), which may hold spaces
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (uvicorn, its zygote, the zygote's workers)."""
    kids, tree, todo = _children(), [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(kids.get(current, []))
    return tree


def is_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie is dead, whoever reaps it


class Stack:
    def __init__(self, dir: Path, count: int) -> None:
        self.dir = dir
        self.url = f"http://127.0.0.1:{int((dir / 'nginx.port').read_text())}"
        self.replicas = [Replica(i, int((dir / f"replica-{i}.port").read_text()), dir) for i in range(count)]

    def kill(self, i: int) -> float:
        """SIGKILL replica ``i``'s whole process tree at once; returns when (time.time())."""
        tree = process_tree(self.replicas[i].pid)
        at = time.time()
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while any(is_alive(p) for p in tree) and time.monotonic() < deadline:
            time.sleep(0.01)
        return at

    def start(self, i: int) -> None:
        """Replica ``i`` again, on its old port (the health checker lets it back in)."""
        self._script("start-replica", str(i))

    def health(self) -> dict[str, Any]:
        """deploy/healthcheck.py's view: {"reloads": n, "replicas": [{addr, up, since, ...}]}."""
        state: dict[str, Any] = json.loads((self.dir / "healthcheck.json").read_text())
        return state

    def up(self) -> dict[str, bool]:
        return {r["addr"]: r["up"] for r in self.health()["replicas"]}

    def wait_healthy(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Until every replica is in nginx's upstream list (the checker writes its state file
        once nginx's new workers run)."""
        deadline = time.monotonic() + timeout_s
        while not all(self.up().values()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"replicas not healthy after {timeout_s} s: {self.health()}")
            time.sleep(0.1)

    def wait_out(self, i: int, timeout_s: float = 30) -> None:
        """Until the health checker has taken replica ``i`` out of nginx's upstream list."""
        deadline = time.monotonic() + timeout_s
        while self.up()[self.replicas[i].addr]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the health checker never took replica {i} out: {self.health()}")
            time.sleep(0.05)

    def all_in(self) -> None:
        """Every replica running and in rotation again, whatever a test killed."""
        for replica in self.replicas:
            if not is_alive(replica.pid):
                self.start(replica.index)
        self.wait_healthy()

    def access_log(self, since: float = 0.0) -> list[AccessEntry]:
        entries = []
        for line in (self.dir / "access.log").read_text().splitlines():
            d = json.loads(line)
            if d["msec"] >= since:
                entries.append(
                    AccessEntry(
                        d["msec"],
                        d["method"],
                        d["uri"],
                        d["status"],
                        d["upstream_addr"],
                        d["upstream_status"],
                        d["request_time"],
                    )
                )
        return entries

    def log_tail(self, name: str, chars: int = 4000) -> str:
        """The end of a log in the stack's folder (replica-0.log, healthcheck.log, error.log)."""
        path = self.dir / name
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def _script(self, *args: str, timeout_s: float = 60) -> str:
        done = subprocess.run(
            ["bash", str(SCRIPT), *args, "--dir", str(self.dir)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"replicas.sh {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout


@contextmanager
def balanced_stack(replicas: int = 3, env: Mapping[str, str] | None = None) -> Iterator[Stack]:
    """Start the stack (replicas in parallel), wait until all are healthy, stop it after.

    ``env``: extra variables for the replicas, e.g. {"TP_MAX_CONCURRENT_RUNS": "2"}."""
    folder = Path(tempfile.mkdtemp(prefix="tp-lb-"))
    args = ["bash", str(SCRIPT), "start", "--replicas", str(replicas), "--port", "0"]
    args += ["--dir", str(folder), "--wait-s", str(int(START_TIMEOUT_S))]
    try:
        done = subprocess.run(
            args,
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            timeout=START_TIMEOUT_S + 30,
            check=False,
        )
        if done.returncode != 0:
            logs = "".join(Path(p).read_text()[-2000:] for p in sorted(folder.glob("*.log")))
            raise RuntimeError(f"replicas.sh start failed:\n{done.stdout}{done.stderr}\n{logs}")
        stack = Stack(folder, replicas)
        stack.wait_healthy()
        yield stack
    finally:
        subprocess.run(
            ["bash", str(SCRIPT), "stop", "--dir", str(folder)],
            capture_output=True,
            timeout=120,
            check=False,
        )
        shutil.rmtree(folder, ignore_errors=True)
