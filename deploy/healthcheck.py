"""Active health checks for nginx, which has none in its open-source build.

Polls every replica's ``/api/health`` (200 once its worker pool is ready, 503 while it starts or
restarts) about once a second and keeps ``upstream.conf`` in the state folder true to the
answers: a failing replica's ``server`` line gets ``down``, a healthy one loses it, and nginx
is told to reload (SIGHUP to the master named in ``nginx.pid``) whenever the file changed. Like
a Kubernetes readiness probe: a replica gets traffic only while it says it can serve it.

A refused connection takes a replica out at once (nothing listens: it is dead); a timeout or a
503 only after ``--fall`` answers in a row (a busy replica may be slow to answer once). One
good answer brings it back. Standard library only: it runs with the host's python3, in the
app's image (compose) and under deploy/replicas.sh alike.

    python3 deploy/healthcheck.py --state DIR --replica 127.0.0.1:8001 --replica 127.0.0.1:8002
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HEALTH_PATH = "/api/health"  # the route every replica answers (app/web/api.py)
UPSTREAM_NAME = "playground"  # proxy_pass http://playground in nginx.conf.template
UPSTREAM_FILE = "upstream.conf"
STATE_FILE = "healthcheck.json"


@dataclasses.dataclass(frozen=True)
class Probe:
    """One answer: ``refused`` means nothing listens (down at once), else ``healthy`` decides."""

    healthy: bool
    refused: bool
    detail: str


@dataclasses.dataclass
class Replica:
    addr: str  # host:port, as nginx's `server` line and $upstream_addr name it
    up: bool = False
    fails: int = 0  # failed answers in a row
    since: float = 0.0  # time.time() of the last change of `up`
    detail: str = "not probed yet"


@dataclasses.dataclass(frozen=True)
class Options:
    state: Path
    pid_file: Path
    interval_s: float
    timeout_s: float
    fall: int
    max_fails: int
    fail_timeout_s: int


def probe(addr: str, timeout_s: float) -> Probe:
    host, _, port = addr.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout_s)
    try:
        conn.request("GET", HEALTH_PATH, headers={"Connection": "close"})
        status = conn.getresponse().status
    except ConnectionRefusedError:
        return Probe(healthy=False, refused=True, detail="connection refused")
    except (OSError, http.client.HTTPException) as exc:  # timeout, reset, garbage
        return Probe(healthy=False, refused=False, detail=f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()
    return Probe(healthy=status == 200, refused=False, detail=f"HTTP {status}")


def update(replica: Replica, answer: Probe, fall: int, now: float) -> bool:
    """Apply one answer; True when the replica changed between up and down."""
    replica.detail = answer.detail
    replica.fails = 0 if answer.healthy else replica.fails + 1
    want_up = answer.healthy or (replica.up and not answer.refused and replica.fails < fall)
    if want_up == replica.up:
        return False
    replica.up, replica.since = want_up, now
    return True


def upstream_text(replicas: list[Replica], opts: Options) -> str:
    # Passive checks stay on too: a replica that dies between two probes is skipped after
    # max_fails refused connections (and the request that met it moves on to the next).
    lines = [f"upstream {UPSTREAM_NAME} {{"]
    for r in replicas:
        down = "" if r.up else " down"
        lines.append(
            f"    server {r.addr} max_fails={opts.max_fails} fail_timeout={opts.fail_timeout_s}s{down};"
        )
    # Idle connections are closed before uvicorn's own 5 s keep-alive timeout would close them
    # under a request just being sent (a POST that must then fail).
    lines += ["    keepalive 16;", "    keepalive_timeout 4s;", "}", ""]
    return "\n".join(lines)


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # nginx never reads half a file


def workers(master: int) -> dict[int, str]:
    """nginx's worker processes (pid -> title) under ``master``, from /proc (Linux)."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            if entry.name.isdigit() and int(stat.rpartition(")")[2].split()[1]) == master:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            continue  # gone meanwhile, or not a process
    return found


def reload_nginx(pid_file: Path, timeout_s: float = 5.0) -> bool:
    """SIGHUP the master, then wait until the reload took: a new worker (it has read the new
    list) and every old one gone or shutting down (no longer accepting). A reader of the state
    file may then take what it says as what nginx does."""
    try:
        master = int(pid_file.read_text().strip())
        before = set(workers(master))
        os.kill(master, signal.SIGHUP)
    except (OSError, ValueError):
        return False  # not started yet: it reads the file when it starts
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = workers(master)
        old_quiet = all(pid not in before or "shutting down" in title for pid, title in now.items())
        if set(now) - before and old_quiet:
            break
        time.sleep(0.01)
    else:  # a list nginx refused keeps the old workers: error.log says why
        print(f"nginx did not reload within {timeout_s} s", file=sys.stderr, flush=True)
    return True


def publish(replicas: list[Replica], opts: Options, reloads: int) -> int:
    """Write the upstream list, reload nginx, then the state file (readers of that file may
    take a replica shown up as one nginx was told of); returns the reloads so far."""
    write_atomic(opts.state / UPSTREAM_FILE, upstream_text(replicas, opts))
    reloads += reload_nginx(opts.pid_file)
    state = {"reloads": reloads, "replicas": [dataclasses.asdict(r) for r in replicas]}
    write_atomic(opts.state / STATE_FILE, json.dumps(state, indent=1) + "\n")
    return reloads


def check_round(pool: ThreadPoolExecutor, replicas: list[Replica], opts: Options) -> list[Replica]:
    answers = list(pool.map(lambda r: probe(r.addr, opts.timeout_s), replicas))
    now = time.time()
    return [r for r, a in zip(replicas, answers, strict=True) if update(r, a, opts.fall, now)]


def log(changed: list[Replica]) -> None:
    stamp = time.strftime("%H:%M:%S")
    for r in changed:
        print(f"{stamp} {r.addr} {'up' if r.up else 'down'} ({r.detail})", flush=True)


def run(addrs: list[str], opts: Options, once: bool = False) -> None:
    replicas = [Replica(a) for a in addrs]
    reloads = 0
    with ThreadPoolExecutor(max_workers=len(replicas)) as pool:
        log(check_round(pool, replicas, opts))
        reloads = publish(replicas, opts, reloads)
        while not once:
            started = time.monotonic()
            changed = check_round(pool, replicas, opts)
            if changed:
                log(changed)
                reloads = publish(replicas, opts, reloads)
            time.sleep(max(0.0, opts.interval_s - (time.monotonic() - started)))


def parse(argv: list[str]) -> tuple[list[str], Options, bool]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--replica", action="append", required=True, help="host:port (repeat)")
    p.add_argument("--state", type=Path, required=True, help="folder of upstream.conf and nginx.pid")
    p.add_argument("--pid-file", type=Path, help="nginx's pid file (default STATE/nginx.pid)")
    p.add_argument("--interval-s", type=float, default=1.0)
    p.add_argument("--timeout-s", type=float, default=2.0)
    p.add_argument("--fall", type=int, default=2, help="timeouts/503s in a row that take one out")
    p.add_argument("--max-fails", type=int, default=2, help="nginx's passive check (server line)")
    p.add_argument("--fail-timeout-s", type=int, default=5, help="nginx's passive check")
    p.add_argument("--once", action="store_true", help="probe once, write upstream.conf, exit")
    a = p.parse_args(argv)
    opts = Options(
        state=a.state,
        pid_file=a.pid_file or a.state / "nginx.pid",
        interval_s=a.interval_s,
        timeout_s=a.timeout_s,
        fall=max(1, a.fall),
        max_fails=a.max_fails,
        fail_timeout_s=a.fail_timeout_s,
    )
    return a.replica, opts, a.once


def main(argv: list[str] | None = None) -> None:
    addrs, opts, once = parse(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop: exit between rounds, quietly
    try:
        run(addrs, opts, once)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
