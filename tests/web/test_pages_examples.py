"""Every example runs in the real sandbox through the real app and shows its lesson's claim."""

from __future__ import annotations

import ast

import pytest

from app.examples import EXAMPLES
from app.schemas import RunResponse
from tests.web.conftest import make_client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client():
    with make_client() as c:
        yield c


def _t(r: RunResponse, name: str):
    found = [t for t in r.tensors if t.name == name or name in t.aliases]
    assert found, f"no tensor {name!r} in {[t.name for t in r.tensors]}"
    return found[0]


def _same_storage(r, *names):
    return len({_storage(r, n) for n in names}) == 1 and _storage(r, names[0]) is not None


def _storage(r, name):
    arrays = {a.name: a.storage for a in r.arrays}
    return arrays[name] if name in arrays else _t(r, name).storage


def _module(r, name):
    return next(m for m in r.modules if m.name == name)


def _flat(values):
    return [v for x in values for v in _flat(x)] if isinstance(values, list) else [values]


def _array(r: RunResponse, name: str):
    found = [a for a in r.arrays if a.name == name or name in a.aliases]
    assert found, f"no array {name!r} in {[a.name for a in r.arrays]}"
    return found[0]


def _shuffled_epochs(stdout: str) -> bool:
    first, second, everything = (ast.literal_eval(line) for line in stdout.splitlines())
    return (
        everything == list(range(6)) == sorted(first) == sorted(second)
        and first != everything
        and first != second
    )


CHECKS = {
    "numpy-sharing": lambda r: r.ok and _same_storage(r, "a", "t", "b") and not _same_storage(r, "a", "c"),
    "inplace": lambda r: (
        _t(r, "x").version >= 2 and _t(r, "x").stride == [1, 3] and not _same_storage(r, "x", "y")
    ),
    "view-shares": lambda r: _same_storage(r, "x", "v", "w") and r.stdout.text.strip() == "-1",
    "view-non-contiguous": lambda r: (
        not r.ok and r.error.line == 6 and "view size" in r.error.message and _t(r, "b").stride == [1, 4]
    ),
    "reshape-copy": lambda r: (
        _same_storage(r, "a", "r1") and not _same_storage(r, "a", "r2") and not _same_storage(r, "a", "f")
    ),
    "squeeze": lambda r: _same_storage(r, "x", "s", "u0", "u1") and _t(r, "u1").shape == [3, 1, 5],
    "dtypes": lambda r: (
        _t(r, "d").nbytes == 32
        and "same" in _t(r, "x").aliases + [_t(r, "x").name]
        and _same_storage(r, "x", "i")
        and _t(r, "i").dtype == "torch.int32"
    ),
    "expand": lambda r: _t(r, "grid").stride == [0, 1] and _same_storage(r, "row", "grid"),
    "leaf-grad": lambda r: (
        _t(r, "x").is_leaf
        and _t(r, "x").grad
        and _t(r, "y").grad_fn == "MulBackward0"
        and not _t(r, "y").grad
        and _t(r, "z").grad
    ),
    "backward-gradient": lambda r: (
        [round(v, 4) for v in _flat(_t(r, "x.grad").preview.values)] == [2.0, 0.4, 0.06]
    ),
    "grad-modes": lambda r: (
        [_t(r, n).grad_fn for n in "abcde"] == [None, "MulBackward0", None, None, "MulBackward0"]
    ),
    "grad-accumulation": lambda r: (
        _flat(_t(r, "g_before").preview.values) == [9.0, 9.0]
        and _flat(_t(r, "w.grad").preview.values) == [0.0, 0.0]
    ),
    "custom-function": lambda r: (
        _t(r, "y").grad_fn == "SumFunctionBackward"
        and any(n.name == "SumFunctionBackward" for n in r.graph.nodes)
        and [round(v, 4) for v in _flat(_t(r, "x.grad").preview.values)] == [0.8] * 3
    ),
    "stale-saved": lambda r: (
        not r.ok
        and r.error.line == 6
        and "inplace operation" in r.error.message
        and any(s.stale for n in r.graph.nodes for s in n.saved)
    ),
    "detach-vs-data": lambda r: (
        _same_storage(r, "d", "y")
        and _t(r, "y").version == 1
        and not _t(r, "d").requires_grad
        and _t(r, "y2").version == 0
        and [round(v, 4) for v in _flat(_t(r, "x.grad").preview.values)] == [5.4366] * 3
        and r.stdout.text.startswith("detach: one of the variables")
    ),
    "parameters": lambda r: (
        [p.name for p in _module(r, "model").parameters]
        == ["scale", "fc2.weight", "fc2.bias", "fc1.weight", "fc1.bias"]
        and [u.name for u in _module(r, "model").unregistered] == ["mask"]
    ),
    "data": lambda r: _same_storage(r, "w", "conv.weight") and not _t(r, "w").requires_grad,
    "init": lambda r: (
        _flat(_t(r, "lin.bias").preview.values) == [0.0, 0.0] and _t(r, "lin.weight").version >= 1
    ),
    "module-vs-functional": lambda r: (
        r.stdout.text.strip() == "True" and len(_module(r, "conv").parameters) == 2
    ),
    "state-dict": lambda r: (
        _same_storage(r, "sd['weight']", "model.weight")
        and not _same_storage(r, "model2.weight", "model.weight")
        and r.stdout.text.strip() == "True"
    ),
    "dataloader": lambda r: (
        _t(r, "batch['image']").shape == [4, 3, 4, 4]
        and _t(r, "batch['landmarks']").shape == [4, 2]
        and r.stdout.text.startswith("dict")
    ),
    "collate-copies": lambda r: (
        "ds.tensors[0]" in _t(r, "images").aliases
        and not _same_storage(r, "images", "xb")
        and _flat(_t(r, "xb").preview.values) == [0.0] * 4
        and r.stdout.text.strip() == "[0.0, 1.0]"
    ),
    "collate-fn": lambda r: (
        _t(r, "batch").shape == [2, 2]
        and _t(r, "batch").dtype == "torch.float32"
        and "raw[0]" in _array(r, "rows[0]").aliases
        and _array(r, "rows[0]").storage != _t(r, "batch").storage
        and r.stdout.text.strip().endswith("[100.   0.]")
    ),
    "shuffle": lambda r: (
        _shuffled_epochs(r.stdout.text)
        and [_t(r, f"epoch1[{i}]").shape for i in range(3)] == [[2]] * 3
        and not _same_storage(r, "epoch1[0]", "loader.dataset")
    ),
    "to-tensor": lambda r: (
        _same_storage(r, "img", "t")
        and not _t(r, "t").is_contiguous
        and _t(r, "x").shape == [3, 2, 3]
        and _t(r, "x").dtype == "torch.float32"
        and float(_t(r, "x").stats.max) <= 1.0
    ),
    "eval-vs-no-grad": lambda r: (
        _t(r, "y1").grad_fn is None
        and _t(r, "y2").grad_fn == "NativeBatchNormBackward0"
        and _flat(_t(r, "bn.num_batches_tracked").preview.values) == [1]
        and all(v != 0.0 for v in _flat(_t(r, "bn.running_mean").preview.values))
        and _module(r, "bn").training is False
    ),
    "train-step": lambda r: (
        r.ok
        and _t(r, "loss").grad_fn == "NllLossBackward0"
        and _t(r, "model.0.weight").grad
        and any("momentum_buffer" in s.entries for s in _module(r, "opt").state)
    ),
    "tqdm-loader": lambda r: (
        "epoch 1: 100%" in r.stderr.text
        and "4/4" in r.stderr.text
        and r.stdout.text.startswith("last loss ")
        and _t(r, "xb").shape == [16, 3]
    ),
    "pil-to-tensor": lambda r: (
        _same_storage(r, "a", "t")
        and _t(r, "t").stride == [1, 9, 3]
        and not _t(r, "t").is_contiguous
        and not _same_storage(r, "a", "x")
        and _t(r, "x").dtype == "torch.float32"
        and "255 (1, 9, 3) False" in r.stdout.text
    ),
    # The memory lessons' numbers are checked in tests/web/test_memory_lessons.py.
    "memory-view-pins": lambda r: _t(r, "first").nbytes == 4000 and not _same_storage(r, "row", "first"),
    "memory-saved-for-backward": lambda r: _t(r, "x").grad is not None,
    "memory-adam-state": lambda r: any(t.name.endswith("['exp_avg_sq']") for t in r.tensors),
    "memory-zero-grad": lambda r: _t(r, "model.weight").grad is None,
    "memory-cnn-calls": lambda r: (
        [c.path for c in r.calls][:2] == ["model", "model.0"] and _t(r, "logits").shape == [2, 10]
    ),
}


def test_every_example_has_a_check():
    assert set(CHECKS) == {e.id for e in EXAMPLES}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.id)
def test_example_runs_and_shows_its_claim(client, example):
    body = client.post("/api/run", json={"code": example.code}).json()
    r = RunResponse.model_validate(body)
    expected_error = example.id in ("view-non-contiguous", "stale-saved")
    assert r.ok != expected_error, (r.error, r.stderr.text)
    assert CHECKS[example.id](r), example.claim
    page = client.get("/", params={"example": example.id})
    assert page.status_code == 200 and 'id="tensors-card"' in page.text


def test_an_unknown_example_is_said_so_not_swapped_silently(client):
    page = client.get("/", params={"example": "no-such-<lesson>"})
    assert page.status_code == 200
    assert "There is no example called “no-such-&lt;lesson&gt;”." in page.text  # escaped
    assert 'id="draft-bar" class="draft-bar" role="status" aria-live="polite">' in page.text  # shown


@pytest.mark.parametrize(
    "params", [{"example": "inplace"}, {}, {"example": ""}], ids=["known", "none", "empty"]
)
def test_a_known_or_absent_example_has_no_link_notice(client, params):
    page = client.get("/", params=params)
    assert page.status_code == 200
    assert "There is no example called" not in page.text
    assert 'id="draft-bar" class="draft-bar" role="status" aria-live="polite" hidden>' in page.text
