"""Through a real nginx in front of three real replicas (tests/deploy/stack.py): round robin with
no affinity gives the same answers on every replica, and a replica killed mid-soak costs only
the requests that were running on it, each a 502/503, while the health checker takes it out of
rotation and, once restarted, back in. Times are measured by bench/balancer.py, not asserted."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import httpx
import pytest

from tests.deploy.stack import CLOSED_UNDER_US, Stack, balanced_stack

pytestmark = pytest.mark.integration

# Seeds itself: the same numbers on every replica whether or not the server seeds runs.
SNIPPET = """\
import torch
torch.manual_seed(0)
x = torch.randn(3, 4, requires_grad=True)
y = x.t()
layer = torch.nn.Linear(4, 2)
loss = layer(x).sum()
loss.backward()
"""
# Draws from torch, numpy and `random` without seeding them: the server seeds every run alike.
UNSEEDED = """\
import random
import numpy as np
import torch
x = torch.randn(3, 4)
a = np.random.rand(3)
r = torch.tensor([random.random()])
"""
# Long enough that a few are always running on the replica that gets killed.
SLOW_SNIPPET = "import time\ntime.sleep(0.3)\n" + SNIPPET
TIMING = ("duration_ms", "wall_ms")  # how long this run took: the one field runs may differ in


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # One spare worker each: three replicas share two cores with the rest of the suite.
    with balanced_stack(replicas=3, env={"TP_SPARE_WORKERS": "1"}) as s:
        yield s


@pytest.fixture(autouse=True)
def all_replicas_in(stack: Stack) -> None:
    """Each test starts with every replica running and in rotation, whatever the last one did."""
    stack.all_in()


@pytest.fixture
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=60) as c:
        yield c


def answer(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    return {k: v for k, v in body.items() if k not in TIMING}


@pytest.mark.parametrize("code", [SNIPPET, UNSEEDED], ids=["seeds-itself", "seeded-per-run"])
def test_each_request_of_a_sequence_lands_on_the_next_replica_with_the_same_answer(stack, client, code):
    responses = [client.post("/api/run", json={"code": code}) for _ in range(33)]
    assert [r.status_code for r in responses] == [200] * 33
    upstreams = [r.headers["x-upstream"] for r in responses]
    assert set(upstreams) == {r.addr for r in stack.replicas}
    assert all(a != b for a, b in zip(upstreams, upstreams[1:], strict=False)), upstreams
    answers = [answer(r) for r in responses]
    assert answers[0]["ok"] is True and answers[0]["tensors"]
    assert all(a == answers[0] for a in answers), "a replica answered differently"


def test_the_page_and_its_run_fragment_come_through_every_replica(stack, client):
    pages = [client.get("/") for _ in range(3)]
    fragments = [client.post("/fragments/run", data={"code": SNIPPET}) for _ in range(3)]
    for r in pages + fragments:
        assert r.status_code == 200 and "text/html" in r.headers["content-type"], r.status_code
    assert {r.headers["x-upstream"] for r in pages} == {r.addr for r in stack.replicas}
    assert {r.headers["x-upstream"] for r in fragments} == {r.addr for r in stack.replicas}
    assert 'name="code"' in pages[0].text or "<textarea" in pages[0].text


def test_compressed_answers_pass_through_the_balancer_once(client):
    r = client.post("/api/run", json={"code": SNIPPET}, headers={"accept-encoding": "gzip"})
    # httpx decoded it: a body gzipped twice would not parse as JSON here.
    assert r.status_code == 200 and r.json()["ok"] is True
    assert r.headers.get("content-encoding") in (None, "gzip")


class Sent(NamedTuple):
    start: float  # time.time() when the request went out
    end: float
    status: int
    upstream: str  # X-Upstream: every replica nginx tried, comma-separated
    ok: bool  # a 200 whose run succeeded


def soak(client: httpx.Client, until: threading.Event, out: list[Sent]) -> None:
    while not until.is_set():
        start = time.time()
        try:
            r = client.post("/api/run", json={"code": SLOW_SNIPPET})
        except CLOSED_UNDER_US:  # by nginx's reload, before any replica saw it: as a browser does
            r = client.post("/api/run", json={"code": SLOW_SNIPPET})
        ok = r.status_code == 200 and r.json().get("ok") is True
        out.append(Sent(start, time.time(), r.status_code, r.headers.get("x-upstream", ""), ok))


def wait_busy(url: str, timeout_s: float = 30) -> None:
    """Until the replica itself says a run is in flight on it (so the kill has a victim)."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=url, timeout=5) as direct:
        while direct.get("/api/health").json()["pool"]["busy"] < 1:
            assert time.monotonic() < deadline, "no run reached the replica"
            time.sleep(0.01)


def concurrent_soak_with_a_kill(stack: Stack, threads: int = 4) -> tuple[list[Sent], float, float]:
    """(every request, when replica 1 was killed, when the checker took it out)."""
    done, results = threading.Event(), [list[Sent]() for _ in range(threads)]
    clients = [httpx.Client(base_url=stack.url, timeout=60) for _ in range(threads)]
    workers = [
        threading.Thread(target=soak, args=(c, done, out)) for c, out in zip(clients, results, strict=True)
    ]
    victim = stack.replicas[1]
    try:
        for w in workers:
            w.start()
        time.sleep(1.0)
        wait_busy(victim.url)
        killed_at = stack.kill(victim.index)
        stack.wait_out(victim.index)
        time.sleep(2.0)  # keep soaking with the replica out
    finally:
        done.set()
        for w in workers:
            w.join()
        for c in clients:
            c.close()
    ejected_at = next(r["since"] for r in stack.health()["replicas"] if r["addr"] == victim.addr)
    return [s for out in results for s in out], killed_at, ejected_at


def test_killing_a_replica_mid_soak_loses_only_its_requests_in_flight(stack):
    sent, killed_at, ejected_at = concurrent_soak_with_a_kill(stack)
    victim = stack.replicas[1].addr
    failed = [s for s in sent if not s.ok]
    assert failed, "the run in flight on the killed replica did not fail"
    for s in failed:
        assert s.status in (502, 503), s
        assert victim in s.upstream, s  # it failed on the dead replica, not elsewhere
        assert s.start < killed_at < s.end, s  # it was in flight at the kill
    assert len(sent) > 3 * len(failed)  # the soak went on around it

    # nginx saw the same: its 5xx are exactly ours, and none after the checker's reload.
    logged = [e for e in stack.access_log(since=killed_at - 5) if e.uri == "/api/run"]
    assert sorted(e.status for e in logged if e.status >= 500) == sorted(s.status for s in failed)
    reloaded = ejected_at + 1.0  # the new nginx workers are up well within this
    after = [e for e in logged if e.msec - e.request_time > reloaded]
    assert after and all(victim not in e.tried for e in after), after[:3]


def test_a_restarted_replica_is_taken_back_in(stack, client):
    victim = stack.replicas[2]
    stack.kill(victim.index)
    stack.wait_out(victim.index)
    stack.start(victim.index)
    stack.wait_healthy()
    upstreams = [client.post("/api/run", json={"code": SNIPPET}).headers["x-upstream"] for _ in range(6)]
    assert upstreams.count(victim.addr) == 2, upstreams  # its turn in the rotation again
