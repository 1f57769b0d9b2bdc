"""deploy/healthcheck.py, the active health checks nginx lacks: when a replica goes out of the
upstream list and comes back, what the list says, and what a probe makes of real answers."""

from __future__ import annotations

import http.server
import shutil
import string
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.stack import ROOT, load_healthcheck
from tests.ports import free_port

HC = load_healthcheck()
TEMPLATE = ROOT / "deploy" / "nginx.conf.template"
REFUSED = HC.Probe(healthy=False, refused=True, detail="connection refused")
UNREADY = HC.Probe(healthy=False, refused=False, detail="HTTP 503")
HEALTHY = HC.Probe(healthy=True, refused=False, detail="HTTP 200")


def up_replica():
    replica = HC.Replica("127.0.0.1:1")
    assert HC.update(replica, HEALTHY, fall=2, now=1.0) is True
    return replica


def test_a_refused_connection_takes_a_replica_out_at_once():
    replica = up_replica()
    assert HC.update(replica, REFUSED, fall=2, now=2.0) is True
    assert replica.up is False and replica.since == 2.0


def test_a_slow_or_unready_answer_takes_it_out_only_after_fall_in_a_row():
    replica = up_replica()
    assert HC.update(replica, UNREADY, fall=2, now=2.0) is False and replica.up
    assert HC.update(replica, HEALTHY, fall=2, now=3.0) is False  # the count starts again
    assert HC.update(replica, UNREADY, fall=2, now=4.0) is False and replica.up
    assert HC.update(replica, UNREADY, fall=2, now=5.0) is True and not replica.up


def test_one_good_answer_brings_it_back():
    replica = HC.Replica("127.0.0.1:1")
    assert HC.update(replica, UNREADY, fall=2, now=1.0) is False and not replica.up
    assert HC.update(replica, HEALTHY, fall=2, now=2.0) is True and replica.up


def test_the_upstream_list_marks_only_the_failing_replicas_down(tmp_path: Path):
    replicas = [HC.Replica("127.0.0.1:8001", up=True), HC.Replica("127.0.0.1:8002", up=False)]
    opts = HC.Options(tmp_path, tmp_path / "nginx.pid", 1.0, 1.0, 2, 3, 7)
    text = HC.upstream_text(replicas, opts)
    assert "server 127.0.0.1:8001 max_fails=3 fail_timeout=7s;" in text
    assert "server 127.0.0.1:8002 max_fails=3 fail_timeout=7s down;" in text
    assert text.startswith(f"upstream {HC.UPSTREAM_NAME} {{")


def test_publish_without_nginx_still_writes_the_list_and_counts_no_reload(tmp_path: Path):
    opts = HC.Options(tmp_path, tmp_path / "nginx.pid", 1.0, 1.0, 2, 2, 5)
    assert HC.publish([HC.Replica("127.0.0.1:8001", up=True)], opts, reloads=0) == 0
    assert "127.0.0.1:8001" in (tmp_path / HC.UPSTREAM_FILE).read_text()
    assert '"reloads": 0' in (tmp_path / HC.STATE_FILE).read_text()


class Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == HC.HEALTH_PATH else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass  # quiet


@pytest.fixture
def server() -> Iterator[http.server.HTTPServer]:
    httpd = http.server.HTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_probe_reads_the_health_route(server, monkeypatch):
    addr = f"127.0.0.1:{server.server_address[1]}"
    assert HC.probe(addr, 2.0) == HC.Probe(healthy=True, refused=False, detail="HTTP 200")
    monkeypatch.setattr(Health, "status", 503)
    assert HC.probe(addr, 2.0) == HC.Probe(healthy=False, refused=False, detail="HTTP 503")


def test_probe_of_a_closed_port_says_refused():
    assert HC.probe(f"127.0.0.1:{free_port()}", 2.0).refused is True


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Path]:
    """A real nginx from the shared template, one replica address in its list; its pid file."""
    conf = string.Template(TEMPLATE.read_text()).safe_substitute(
        TP_LB_PORT=str(free_port()), TP_LB_STATE=str(tmp_path)
    )
    (tmp_path / "nginx.conf").write_text(conf)
    opts = HC.Options(tmp_path, tmp_path / "nginx.pid", 1.0, 1.0, 2, 2, 5)
    HC.publish([HC.Replica(f"127.0.0.1:{free_port()}", up=True)], opts, reloads=0)
    binary = shutil.which("nginx") or "/usr/sbin/nginx"  # scripts/setup.sh installs it
    args = ["-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e", str(tmp_path / "error.log")]
    subprocess.run([binary, *args], check=True, timeout=30)
    try:
        yield tmp_path / "nginx.pid"
    finally:
        subprocess.run([binary, *args, "-s", "quit"], check=False, timeout=30)


def test_a_reload_returns_once_new_workers_serve_the_new_list(nginx: Path):
    master = int(nginx.read_text())
    deadline = time.monotonic() + 10
    while not (before := set(HC.workers(master))):  # the daemon forks its worker after the pid file
        assert time.monotonic() < deadline, "nginx started no worker"
        time.sleep(0.01)
    assert HC.reload_nginx(nginx) is True
    now = HC.workers(master)
    assert set(now) - before  # a worker that read the new list
    assert all(pid not in before or "shutting down" in title for pid, title in now.items())


def test_no_reload_is_counted_while_nginx_is_not_running(tmp_path: Path):
    assert HC.reload_nginx(tmp_path / "nginx.pid") is False
