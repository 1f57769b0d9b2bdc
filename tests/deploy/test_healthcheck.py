"""deploy/healthcheck.py, the active health checks nginx lacks: when a replica goes out of the
upstream list and comes back, what the list says, and what a probe makes of real answers."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.stack import load_healthcheck
from tests.ports import free_port

HC = load_healthcheck()
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
