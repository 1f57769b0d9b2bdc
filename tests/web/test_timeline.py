"""Step-through over HTTP: /api/run with trace, the page's timeline and /fragments/step."""

from __future__ import annotations

import re
import time
from html import unescape

import pytest

from app.examples import EXAMPLES, by_id
from app.schemas import (
    EntryChanges,
    FieldChange,
    GraphChanges,
    RunResponse,
    Step,
    StepChanges,
    StorageChanges,
)
from app.web import timeline

pytestmark = pytest.mark.integration


def _code(example_id: str) -> str:
    example = by_id(example_id)
    assert example is not None, example_id
    return example.code


def _built(resp: RunResponse, current: int | None = None) -> timeline.Timeline:
    tl = timeline.build(resp, current)
    assert tl is not None, "a traced run has steps"
    return tl


def _group(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    assert found is not None, pattern
    return found.group(1)


INPLACE = _code("inplace")


def traced(client, code: str, states: bool = True) -> dict:
    """As the page asks (every step's state) unless `states` is False (the API's default)."""
    r = client.post("/api/run", json={"code": code, "trace": True, "step_states": states})
    assert r.status_code == 200
    return r.json()


def test_api_adds_steps_only_when_asked(client):
    plain = client.post("/api/run", json={"code": "x = 1"}).json()
    assert plain["steps"] == [] and plain["steps_truncated"] is False
    body = traced(client, INPLACE)
    assert [s["start_line"] for s in body["steps"]] == [1, 3, 4, 5, 6, 7]
    add_ = body["steps"][3]
    assert add_["changes"]["tensors"]["changed"][0]["fields"]["version"] == [0, 1]
    assert add_["grad_mode"] == "enable_grad"


def test_trace_must_be_a_boolean(client):
    r = client.post("/api/run", json={"code": "x = 1", "trace": "sometimes"})
    assert r.status_code == 422
    r = client.post("/api/run", json={"code": "x = 1", "trace": True, "step_states": "all"})
    assert r.status_code == 422


def test_api_steps_carry_changes_and_states_only_when_asked(client):
    light = client.post("/api/run", json={"code": INPLACE, "trace": True}).json()
    full = traced(client, INPLACE)
    assert [s["changes"]["tensors"] for s in light["steps"]] == [
        s["changes"]["tensors"] for s in full["steps"]
    ]
    assert all(s["state"] is None and s["storage_keys"] == {} for s in light["steps"])
    assert any(s["state"] for s in full["steps"])
    # Without states the storage ids in the changes are the stable keys themselves.
    added = [k for s in light["steps"] for k in s["changes"]["storages"]["added"]]
    keyed = [s["storage_keys"][i] for s in full["steps"] for i in s["changes"]["storages"]["added"]]
    assert added == keyed and all(k.startswith("m") for k in added)
    assert light["tensors"] == full["tensors"] and light["storages"] == full["storages"]


def test_state_after_the_last_step_is_the_final_state(client):
    resp = RunResponse.model_validate(traced(client, _code("train-step")))
    last = timeline.state_at(resp, len(resp.steps) - 1)
    for section in ("tensors", "arrays", "storages", "graph", "modules"):
        assert getattr(last, section) == getattr(resp, section), section


def test_state_at_an_earlier_step(client):
    resp = RunResponse.model_validate(traced(client, INPLACE))
    after_add = timeline.state_at(resp, 3)
    x = next(t for t in after_add.tensors if t.name == "x")
    assert (x.shape, x.version) == ([2, 3], 1)
    assert after_add.stdout.text == ""
    assert timeline.state_at(resp, 5).stdout.text.startswith("torch.Size([3, 2])")
    # Regression: a step's panels dropped the run's seed (its status line said none).
    assert resp.seed is not None and after_add.seed == resp.seed


def test_error_step_carries_the_error(client):
    resp = RunResponse.model_validate(traced(client, _code("stale-saved")))
    assert resp.steps[-1].kind == "error"
    error = timeline.state_at(resp, len(resp.steps) - 1).error
    assert error is not None and error.type == "RuntimeError"
    assert timeline.state_at(resp, 1).ok is True


def test_change_lines_name_the_lessons(client):
    resp = RunResponse.model_validate(traced(client, _code("grad-accumulation")))
    tl = _built(resp)
    texts = {s.label.split(" · ")[0]: [c.text for c in s.changes] for s in tl.steps}
    assert "w: .grad appeared" in texts["line 6, iteration 1"]  # loss.backward()
    assert "w.grad: version 0 → 1, values changed" in texts["line 6, iteration 2"]
    assert any("w.grad: version 1 → 2" in t for t in texts["lines 4-7, iteration 3"])
    resp = RunResponse.model_validate(traced(client, _code("to-tensor")))
    tl = _built(resp)
    contiguous = next(s for s in tl.steps if s.start_line == 6)
    assert any(c.text.startswith("new storage") for c in contiguous.changes)


def test_a_kernel_write_without_a_version_bump_shows_at_its_step(client):
    """eval-vs-no-grad: batch_norm writes running_mean in place without bumping its version;
    the step under no_grad still shows the values changing, and eval() stops it."""
    resp = RunResponse.model_validate(traced(client, _code("eval-vs-no-grad")))
    by_line = {s.start_line: s for s in resp.steps}
    changed = {c.name: c for c in by_line[8].changes.tensors.changed}
    assert by_line[8].grad_mode == "no_grad"
    assert changed["bn.running_mean"].values_changed and "version" not in changed["bn.running_mean"].fields
    assert changed["bn.num_batches_tracked"].fields["version"] == [1, 2]
    assert by_line[10].changes.tensors.changed == [] and by_line[10].changes.tensors.added == ["y2"]


def test_change_lines_tell_names_views_and_copies_apart(client):
    code = (
        "import torch\na = torch.ones(3)\nb = a\nc = a.view(3)\ne = a.clone()\ndel b\n"
        "n = a.numpy()\ng = e\ng, h = None, e\ne = e + 1\n"
    )
    resp = RunResponse.model_validate(traced(client, code))
    texts = {s.start_line: [c.text for c in s.changes] for s in _built(resp).steps}
    assert texts[3] == ["a: also named b"]
    assert texts[4] == ["new c (3,), shares s0 with a"]
    assert texts[5] == ["new e (3,)", "new storage s1 (e)"]
    assert texts[6] == ["a: no longer named b"]
    assert texts[7] == ["new n (3,), shares s0 with a, c"]
    assert texts[9] == ["e: also named h; no longer named g"]
    assert texts[10][0] == "h (3,) listed alone: it was another name for e"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.id)
def test_every_lesson_steps_through(client, example):
    r = client.get(f"/?example={example.id}")
    assert r.status_code == 200
    count = int(_group(r'data-count="(\d+)"', r.text))
    assert count >= 2 and 'id="tl-open"' in r.text  # an outline: no step's changes yet
    for step in range(count):
        r = client.post("/fragments/step", data={"code": example.code, "step": str(step)})
        assert r.status_code == 200
        assert f'data-step="{step}"' in r.text and 'id="panels"' in r.text
        assert 'id="tl-open"' not in r.text  # the step's own changes came with it


def test_a_step_is_drawn_from_the_code_alone(client):
    """No token: the step's run is the code run again with that step's state, on any replica
    (an old page still sending run= is answered the same)."""
    r = client.post("/fragments/step", data={"code": INPLACE, "step": "3"})
    assert r.status_code == 200
    assert "x: version 0 → 1" in r.text
    old = client.post("/fragments/step", data={"code": INPLACE, "run": "gone", "step": "3"})
    assert _changes(old.text) == _changes(r.text)


def test_a_step_past_the_last_is_a_notice_not_a_500(client):
    r = client.post("/fragments/step", data={"code": INPLACE, "step": "99"})
    assert r.status_code == 200 and r.headers["HX-Retarget"] == "#notice"
    assert "there is no step 100" in r.text


def _changes(html: str) -> list[str]:
    return re.findall(r'<li class="chg[^>]*>([^<]*)', html)


def test_a_state_at_run_tells_names_views_and_copies_apart_like_a_full_one(client):
    """Regression: a state_at run has no state before its step, so "h listed alone: it was
    another name for e" came out as "new h"; and its storages were named by their keys (m1)."""
    code = "import torch\na = torch.ones(3)\ne = a.clone()\ng, h = None, e\ne = e + 1\n"
    at = {
        k: _changes(client.post("/fragments/step", data={"code": code, "step": str(k)}).text) for k in (2, 4)
    }
    assert at[2][0] == "new e (3,)" and re.fullmatch(r"new storage s\d+ \(e\)", at[2][1]), at[2]
    assert at[4][0] == "h (3,) listed alone: it was another name for e"


TRY_CODE = """\
import torch
a = torch.arange(6).view(2, 3).t()
try:
    b = a.view(-1)
except RuntimeError:
    b = a.reshape(-1)
for i in range(30):
    pass
"""


def test_a_caught_exception_and_step_notes_show_on_the_page(client):
    """Step notes (a handled exception, iterations run unstepped) were in the API only."""
    resp = RunResponse.model_validate(traced(client, TRY_CODE))
    tl = _built(resp)
    caught = next(i for i, s in enumerate(tl.steps) if s.kind == "caught")
    assert tl.steps[caught].label.startswith("line 4, raised and caught")
    r = client.post("/fragments/step", data={"code": TRY_CODE, "step": str(caught)})
    assert r.status_code == 200
    assert re.search(
        r'class="note step-note">raised RuntimeError: view size is not compatible'
        r'.*handled by the except at line 5</p>',
        r.text,
    )
    r = client.post("/fragments/step", data={"code": TRY_CODE, "step": str(len(tl.steps) - 1)})
    assert "iterations 21-30 ran without steps" in r.text


def test_detach_moves_the_shared_counter_and_data_writes_show_without_one(client):
    resp = RunResponse.model_validate(traced(client, _code("detach-vs-data")))
    tl = _built(resp)
    at = {s.start_line: [c.text for c in s.changes] for s in tl.steps}
    assert at[5] == ["new d (3,), shares s1 with y"]
    assert at[6] == ["y: version 0 → 1, values changed", "d: version 0 → 1, values changed"]
    assert at[12] == ["y2: values changed"]  # .data: the bytes moved, no counter
    caught = next(s for s in tl.steps if s.kind == "caught")
    assert caught.start_line == 8 and "modified by an inplace operation" in (caught.note or "")


def test_a_step_note_is_escaped(client):
    code = "try:\n    raise ValueError('<b>x</b>')\nexcept ValueError:\n    pass\n"
    r = client.post("/fragments/step", data={"code": code, "step": "0"})
    assert "raised ValueError: &lt;b&gt;x&lt;/b&gt;" in r.text and "<b>x</b>" not in r.text


def test_a_diagram_drawn_on_demand_shows_the_state_of_the_step_on_screen(client):
    """The placeholder of each step's panels carries that step's layout of the row."""

    def caption(step: str) -> str:
        html = client.post("/fragments/step", data={"code": INPLACE, "step": step, "focus": "y"}).text
        x = _group(r'<tr class="trow[^"]*" data-t="(\d+)" data-name="x"', html)
        layout = _group(rf'<figure class="sd" data-t="{x}" id="sd-{x}"[^>]*data-layout="([^"]*)"', html)
        r = client.post("/fragments/diagram", data={"t": x, "layout": unescape(layout)})
        assert r.status_code == 200
        return _group(r"<figcaption>([^<]*)", r.text)

    assert caption("3").startswith("x: shape (2, 3), stride (3, 1)")  # after x.add_(1)
    assert caption("4").startswith("x: shape (3, 2), stride (1, 3)")  # after x.t_()


def test_run_fragment_swaps_the_timeline_out_of_band(client):
    r = client.post("/fragments/run", data={"code": INPLACE})
    assert r.status_code == 200
    assert re.search(r'<section id="timeline"[^>]*hx-swap-oob="true"', r.text)


def _step(index: int = 0, **sections) -> Step:
    """A step whose changes are `sections` ({"tensors": {"added": [...]}, ...}), built without
    validation: the timeline must hold past the schema's caps by itself."""
    changes = StepChanges.model_construct(
        tensors=EntryChanges.model_construct(**sections.get("tensors", {})),
        arrays=EntryChanges.model_construct(**sections.get("arrays", {})),
        modules=EntryChanges.model_construct(**sections.get("modules", {})),
        storages=StorageChanges.model_construct(**sections.get("storages", {})),
        graph=GraphChanges.model_construct(**sections.get("graph", {})),
    )
    return Step.model_construct(index=index, start_line=index + 1, end_line=index + 1, changes=changes)


def test_a_step_adding_25000_names_is_described_in_linear_time():
    """Regression: a step adding 25,000 names sharing one storage took 10 s on the event loop
    (a scan of the storage's members per name, list membership per name)."""
    names = [f"t{i}" for i in range(25_000)]
    state = {
        "tensors": [{"name": n, "shape": [2], "storage": "s0"} for n in names],
        "storages": [{"id": "s0", "members": [{"name": n} for n in names]}],
    }
    before = {"tensors": [{"name": "x", "aliases": [f"a{i}" for i in range(25_000)]}]}
    started = time.process_time()
    lines = timeline.describe_changes(_step(tensors={"added": names}), state, before)
    assert time.process_time() - started < 1.0
    assert len(lines) == timeline.CHANGES_MAX + 1
    assert lines[0].text == "new t0 (2,), shares s0 with t1, t2, t3 and 24996 more"
    assert lines[-1].text == f"and {25_000 - timeline.CHANGES_MAX} more changes not listed"


def test_a_new_storage_of_thousands_of_members_lists_a_few():
    names = [f"t{i}" for i in range(5_000)]
    state = {"storages": [{"id": "s1", "members": [{"name": n} for n in names]}]}
    (line,) = timeline.describe_changes(_step(storages={"added": ["s1"]}), state, {})
    assert line.text == (
        "new storage s1 ("
        + ", ".join(names[: timeline.LISTED_MAX])
        + f" and {5_000 - timeline.LISTED_MAX} more)"
    )


def test_a_forged_field_value_is_printed_short():
    fc = FieldChange.model_construct(
        name="x", fields={"shape": [[1] * 10_000, "z" * 10_000], "aliases": [5, ["b"]]}, values_changed=False
    )
    (line,) = timeline.describe_changes(_step(tensors={"changed": [fc]}), {}, {})
    assert line.text == f"x: shape [10000 items] → {'z' * timeline.VALUE_CHARS_MAX}, also named b"


def test_only_the_step_on_screen_is_described(monkeypatch):
    """The timeline describes a step when it is shown: describing every step cost steps x
    state size per render."""
    described: list[int] = []
    real = timeline.describe_changes

    def counted(step, *a):
        described.append(step.index)
        return real(step, *a)

    monkeypatch.setattr(timeline, "describe_changes", counted)
    resp = RunResponse.model_construct(ok=True, steps=[_step(i) for i in range(50)], steps_truncated=False)
    tl = _built(resp, 7)
    assert described == [] and len(tl.steps) == 50
    assert tl.step.changes == [] and described == [7]
