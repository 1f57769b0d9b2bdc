"""The memory lessons (app/examples/memory.py) in the real sandbox through the real app: the
ledger's numbers worked out by hand, the call tree's shapes and parameter total, the panels on
each lesson's page, and the memory-over-steps fragment the page fetches for an outline run."""

from __future__ import annotations

import re

import pytest

from app.examples import by_id
from app.schemas import RunResponse
from tests.web.conftest import make_client

pytestmark = pytest.mark.integration

MEMORY_LESSONS = ["memory-view-pins", "memory-saved-for-backward", "memory-adam-state", "memory-zero-grad"]
LESSONS = [*MEMORY_LESSONS, "memory-cnn-calls"]


@pytest.fixture(scope="module")
def client():
    with make_client() as c:
        yield c


@pytest.fixture(scope="module")
def traced(client) -> dict[str, RunResponse]:
    def run(lesson: str) -> RunResponse:
        example = by_id(lesson)
        assert example is not None
        body = client.post("/api/run", json={"code": example.code, "trace": True}, timeout=60).json()
        return RunResponse.model_validate(body)

    return {lesson: run(lesson) for lesson in LESSONS}


def _categories(totals) -> dict[str, int]:
    return {k: v for k, v in totals.by_category.model_dump().items() if v}


def test_a_view_keeps_the_whole_storage_alive_and_a_clone_does_not(traced):
    m = traced["memory-view-pins"].memory
    assert m is not None
    assert m.total_bytes == 4_000_000 + 4_000  # big's storage (held by row) and first's own 4 KB
    (pinned,) = m.pinned
    assert (pinned.names, pinned.nbytes, pinned.used_bytes) == (["row"], 4_000_000, 4_000)
    assert m.pinned_bytes == 3_996_000


def test_autograd_saves_intermediates_until_backward(traced):
    steps = traced["memory-saved-for-backward"].steps
    before, after = steps[3].memory, steps[4].memory  # the loss line (step 4), backward() (step 5)
    assert before is not None and after is not None
    assert _categories(before) == {"tensors": 4_000_004, "saved_for_backward": 8_000_008}
    assert _categories(after) == {"tensors": 4_000_004, "gradients": 4_000_000}


def test_adams_first_step_doubles_the_parameters_memory(traced):
    """The issue's golden: Linear(1000, 1000) with Adam after one step."""
    m = traced["memory-adam-state"].memory
    assert m is not None
    assert _categories(m) == {
        "parameters": 4_004_000,
        "gradients": 4_004_000,
        "optimizer_state": 8_008_000 + 2 * 4,  # exp_avg, exp_avg_sq, and a float32 step counter each
        "tensors": 4,  # loss
    }
    before_step = traced["memory-adam-state"].steps[5].memory
    assert before_step is not None and before_step.by_category.optimizer_state == 0


def test_zero_grad_frees_the_gradients_each_iteration(traced):
    steps = traced["memory-zero-grad"].steps
    grads = [s.memory.by_category.gradients for s in steps if s.memory is not None]
    assert len(grads) == len(steps)
    assert grads.count(1_002_000) >= 4 and grads[-1] == 0
    # they come and go: after each backward() there is a zero_grad() that drops them
    assert [g for i, g in enumerate(grads) if i == 0 or g != grads[i - 1]] == [0, 1_002_000, 0, 1_002_000, 0]


def test_the_cnns_call_tree_has_each_layers_shape_and_the_parameter_total(traced):
    r = traced["memory-cnn-calls"]
    tree = [
        (c.path, c.class_, c.depth, c.output_shapes["shape"] if c.output_shapes else None) for c in r.calls
    ]
    assert tree == [
        ("model", "Sequential", 0, [2, 10]),
        ("model.0", "Conv2d", 1, [2, 8, 26, 26]),
        ("model.1", "ReLU", 1, [2, 8, 26, 26]),
        ("model.2", "MaxPool2d", 1, [2, 8, 13, 13]),
        ("model.3", "Conv2d", 1, [2, 16, 11, 11]),
        ("model.4", "ReLU", 1, [2, 16, 11, 11]),
        ("model.5", "AdaptiveAvgPool2d", 1, [2, 16, 1, 1]),
        ("model.6", "Flatten", 1, [2, 16]),
        ("model.7", "Linear", 1, [2, 10]),
    ]
    assert sum(c.params for c in r.calls) == 1_418  # 80 + 1,168 + 170, as the claim says


@pytest.mark.parametrize("lesson", MEMORY_LESSONS)
def test_each_memory_lessons_page_shows_the_memory_panel_and_the_chart(client, lesson):
    page = client.get("/", params={"example": lesson})
    assert page.status_code == 200
    text = " ".join(page.text.split())
    assert 'id="memory-card"' in text and 'class="membar" role="img"' in text
    assert 'id="mem-chart"' in text  # drawn from the steps, or the placeholder an outline run gets
    if lesson == "memory-view-pins":
        assert "<code>row</code> keeps all 4 MB of storage" in text and "alive and uses 4 KB of it." in text


def test_the_cnn_lessons_page_shows_the_call_tree_linked_to_the_modules_panel(client):
    text = " ".join(client.get("/", params={"example": "memory-cnn-calls"}).text.split())
    assert 'id="calls-card"' in text and "<strong>1,418</strong> parameters" in text
    assert re.search(r'<td class="cshape" title="\(2, 8, 26, 26\)">\(2, 8, 26, 26\)</td>', text)
    assert 'href="#module-0"' in text and 'id="module-0"' in text
    # each layer is listed in the Modules panel on its own, and its row links to that entry
    found = re.search(r'<a href="#(module-\d+)" title="model.0: model.0 in the Modules panel">', text)
    assert found and re.search(rf'id="{found.group(1)}"[^>]*> ?<summary><code>model.0</code>', text)


def test_the_memory_steps_fragment_draws_the_chart_of_the_code_with_the_marker_at_the_step(client):
    example = by_id("memory-saved-for-backward")
    assert example is not None
    html = client.post("/fragments/memory-steps", data={"code": example.code, "step": "3"}).text
    assert 'id="mem-chart"' in html and 'data-steps="5"' in html
    assert 'x1="210.0"' in html  # step 4 of 5: (3 + 0.5) * 300 / 5
    assert "<title>step 4: 12 MB</title>" in html


def test_the_memory_steps_fragment_says_what_it_could_not_measure(client):
    broken = client.post("/fragments/memory-steps", data={"code": "x = (", "step": "0"})
    assert broken.status_code == 200 and "the code does not parse" in broken.text
    nothing = client.post("/fragments/memory-steps", data={"code": "", "step": "0"})
    assert nothing.status_code == 200 and "this code ran no step" in nothing.text


def test_at_a_step_the_panels_show_that_steps_memory_and_the_calls_made_so_far(client):
    """Regression: a step's panels are built from its state, which had no ledger and no calls,
    so stepping made the Memory and Calls panels disappear."""
    saved = by_id("memory-saved-for-backward")
    cnn = by_id("memory-cnn-calls")
    assert saved is not None and cnn is not None

    def step(code: str, index: int) -> str:
        return " ".join(client.post("/fragments/step", data={"code": code, "step": str(index)}).text.split())

    assert "Total <strong>12 MB</strong>" in step(saved.code, 3)  # before backward(): 8 MB saved
    assert "Total <strong>8 MB</strong>" in step(saved.code, 4)  # after: freed, 4 MB of gradients
    assert 'id="calls-card"' not in step(cnn.code, 4)  # model not called yet
    assert step(cnn.code, 5).count('class="crow') == 9
