"""The run's seed, as the API and the page show it (issue #16): what the server sent the worker
(TP_RUN_SEED, or the request's `seed`), never what the worker claims."""

from __future__ import annotations

import re

import pytest
import torch

from app.main import create_app
from app.sandbox.protocol import SEED_END
from app.settings import Settings
from tests.forged_kit import ForgedPool, encoded, payload
from tests.web.conftest import make_client
from tests.webserver import client_for

NUMBERS = "import torch\nx = torch.randn(2)\nprint(x.tolist())"
SEED_NOTE = re.compile(r'<small class="seed" title="([^"]*)">seed (\d+)</small>')


def drawn(seed: int) -> str:
    return f"{torch.randn(2, generator=torch.Generator().manual_seed(seed)).tolist()}\n"


@pytest.mark.integration
def test_the_api_answers_the_seed_a_real_run_started_from():
    with make_client() as client:
        plain = client.post("/api/run", json={"code": NUMBERS}).json()
        chosen = client.post("/api/run", json={"code": NUMBERS, "seed": 7, "trace": True}).json()
    assert (plain["seed"], plain["stdout"]["text"]) == (0, drawn(0))
    assert (chosen["seed"], chosen["stdout"]["text"]) == (7, drawn(7))


def forged_client(answer_seed: object, run_seed: int = 0):
    """A server whose worker claims `answer_seed` in every payload; its pool records the seeds the
    server asked for."""
    pools: list[ForgedPool] = []

    def factory(_settings: Settings) -> ForgedPool:
        pools.append(ForgedPool(lambda code, trace: encoded(payload(seed=answer_seed))))
        return pools[-1]

    return client_for(create_app(Settings(run_seed=run_seed), pool_factory=factory)), pools


def test_the_setting_is_the_default_and_a_request_overrides_it():
    served, pools = forged_client(3, run_seed=3)
    with served as client:
        default = client.post("/api/run", json={"code": "x = 1"}).json()
        chosen = client.post("/api/run", json={"code": "x = 1", "seed": 0}).json()
    assert (default["seed"], chosen["seed"]) == (3, 0)
    assert pools[0].seeds == [3, 0]


def test_a_forged_seed_does_not_change_what_the_response_says():
    """The worker is the snippet's: it could claim another seed for its numbers. The response
    says the seed the server sent, on the JSON route and on the page."""
    served, pools = forged_client(999)
    with served as client:
        answer = client.post("/api/run", json={"code": "x = 1", "seed": 5}).json()
        page = client.post("/fragments/run", data={"code": "x = 1"}).text
    assert answer["ok"] is True and answer["seed"] == 5
    assert [m.group(2) for m in SEED_NOTE.finditer(page)] == ["0"]
    assert "999" not in page
    assert pools[0].seeds == [5, 0]


def test_a_seed_of_the_wrong_type_from_the_worker_is_an_invalid_result():
    served, _ = forged_client("zero")
    with served as client:
        answer = client.post("/api/run", json={"code": "x = 1"}).json()
    assert answer["ok"] is False and answer["error"]["type"] == "Crash"
    assert "invalid result" in answer["error"]["message"] and answer["seed"] == 0


def test_the_page_shows_the_seed_and_says_what_it_means():
    served, _ = forged_client(0, run_seed=42)
    with served as client:
        ok = client.post("/fragments/run", data={"code": "x = 1"}).text
    notes = SEED_NOTE.findall(ok)
    assert len(notes) == 1 and notes[0][1] == "42"
    title = notes[0][0]
    assert "seeded with 42" in title and "torch.manual_seed(...)" in title and "share link" in title


def test_a_failed_run_shows_its_seed_too():
    failed = payload(ok=False, error={"type": "ValueError", "message": "no", "line": 1, "traceback": []})
    served = client_for(create_app(Settings(), pool_factory=ForgedPool.factory(lambda c, t: encoded(failed))))
    with served as client:
        page = client.post("/fragments/run", data={"code": "x = 1"}).text
    assert "ValueError" in page and [m.group(2) for m in SEED_NOTE.finditer(page)] == ["0"]


@pytest.mark.parametrize(
    ("seed", "why"),
    [
        (SEED_END, "less than 4294967296"),
        (-1, "greater than or equal to 0"),
        (True, "valid integer"),
        ("5", "valid integer"),
        (1.0, "valid integer"),
    ],
)
def test_a_seed_out_of_range_is_a_422_that_says_why(seed, why):
    served, pools = forged_client(0)
    with served as client:
        r = client.post("/api/run", json={"code": "x = 1", "seed": seed})
    assert r.status_code == 422
    assert r.json()["detail"].startswith("seed: ") and why in r.json()["detail"]
    assert pools[0].seeds == []  # nothing ran


def test_the_setting_has_numpys_bounds():
    assert Settings(run_seed=SEED_END - 1).run_seed == SEED_END - 1
    for bad in (-1, SEED_END):
        with pytest.raises(ValueError, match="run_seed"):
            Settings(run_seed=bad)
