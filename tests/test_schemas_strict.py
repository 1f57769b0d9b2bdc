"""The strict public schema: the inspector's real output passes, each forged claim is refused,
and the piecewise validator (app.validate_pieces) answers exactly as the schema does."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from app import schemas as S
from app.convert import _flatten
from app.validate_pieces import Invalid, validate_run

GOLDEN = sorted((Path(__file__).parent / "inspector" / "golden").glob("*.json"))
TRAINING = """\
import torch
import torch.nn as nn
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
x = torch.randn(16, 4)
v = x.t()
n = x.numpy()
for _ in range(3):
    opt.zero_grad()
    loss = model(x).pow(2).mean()
    loss.backward()
    opt.step()
print(loss.item())
"""


def both(flat: dict) -> S.RunResponse:
    """The schema's answer, checked to be the piecewise validator's too."""
    try:
        whole = S.RunResponse.model_validate(flat)
    except ValidationError:
        with pytest.raises(Invalid):
            validate_run(copy.deepcopy(flat))
        raise
    assert validate_run(copy.deepcopy(flat)) == whole
    return whole


@pytest.fixture(scope="module")
def traced() -> dict:
    """A real traced run with every step's state, in process (the worker's own payload)."""
    from app.sandbox.limits import SandboxLimits
    from app.sandbox.runner import run_snippet

    data = json.loads(run_snippet(TRAINING, SandboxLimits(exec_timeout_s=30.0), trace={"states": True}))
    assert data["ok"] and data["steps"], data["error"]
    return _flatten(data)


def tensor(**over) -> dict:
    base = {
        "name": "x",
        "aliases": [],
        "shape": [2, 3],
        "dtype": "torch.float32",
        "device": "cpu",
        "stride": [3, 1],
        "storage_offset": 0,
        "numel": 6,
        "element_size": 4,
        "nbytes": 24,
        "storage": "s0",
        "byte_range": [0, 24],
        "preview": {"values": [[0.0, 1.0, 2.0], [3.0, 4.0, "nan"]], "truncated": False},
        "flags": [],
    }
    return base | over


def run(**over) -> dict:
    base = {
        "ok": True,
        "tensors": [tensor()],
        "storages": [
            {
                "id": "s0",
                "device": "cpu",
                "nbytes": 24,
                "members": [{"name": "x", "kind": "tensor", "byte_range": [0, 24]}],
            }
        ],
        "graph": {
            "nodes": [
                {"id": "n0", "name": "AddBackward0", "kind": "function"},
                {"id": "n1", "name": "AccumulateGrad", "kind": "leaf"},
            ],
            "edges": [{"source": "n0", "target": "n1"}],
        },
    }
    return base | over


def step(state: dict | None = None, **over) -> dict:
    return {"index": 0, "start_line": 1, "end_line": 1, "state": state} | over


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_every_golden_snapshot_passes(path):
    snapshot = json.loads(path.read_text())
    resp = both({"ok": True, **snapshot})
    assert len(resp.tensors) == len(snapshot["tensors"])


def test_a_real_traced_run_with_states_passes_whole_and_in_pieces(traced):
    resp = both(traced)
    assert len(resp.steps) == len(traced["steps"]) and resp.modules and resp.arrays
    assert any(
        s.state is not None and s.state.tensors is not None and s.state.tensors.set for s in resp.steps
    )


def test_a_response_round_trips_through_its_own_json(traced):
    """The run cache keeps a response as JSON and parses it again: dumped, it must validate to
    the same response (the state's absent graph stays absent, not null)."""
    resp = both(traced)
    again = S.RunResponse.model_validate_json(resp.model_dump_json())
    assert again == resp
    assert all(
        "graph" not in json.loads(s.model_dump_json())["state"]
        for s in resp.steps
        if s.state is not None and s.state.graph is None
    )


def test_every_field_the_inspector_writes_exists_in_the_schema(traced):
    """Drift: a key the inspector emits that the schema lacks is dropped without a word
    (extra="ignore"). Checked on a real snapshot and on the fallback entries."""
    import torch

    from app.inspector.tensors import minimal_tensor
    from app.inspector.walk import Found

    pairs: list[tuple[type[BaseModel], list]] = [
        (S.TensorInfo, traced["tensors"] + [minimal_tensor(Found(torch.ones(1), "t"))]),
        (S.ArrayInfo, traced["arrays"]),
        (S.StorageInfo, traced["storages"]),
        (S.GraphNode, traced["graph"]["nodes"]),
        (S.GraphEdge, traced["graph"]["edges"]),
    ]
    pairs += [
        (S.ModuleInfo, [m for m in traced["modules"] if m["kind"] == "module"]),
        (S.ModuleInfo, [m for m in traced["modules"] if m["kind"] == "optimizer"]),
        (S.Step, traced["steps"]),
    ]
    for model, entries in pairs:
        known = {f.alias or name for name, f in model.model_fields.items()}
        assert entries, model
        for entry in entries:
            assert set(entry) <= known, (model.__name__, set(entry) - known)


def test_caps_are_at_least_the_inspectors_and_the_settings():
    from app.inspector.diff import ARRAY_FIELDS, MODULE_FIELDS, TENSOR_FIELDS
    from app.inspector.limits import InspectLimits
    from app.settings import Settings

    limits = InspectLimits()
    assert S.TENSORS_MAX >= limits.tensors_max and S.ARRAYS_MAX >= limits.arrays_max
    assert S.GRAPH_NODES_MAX >= limits.graph_nodes_max
    assert S.MODULES_MAX >= limits.modules_max + limits.optimizers_max
    assert S.PREVIEW_VALUES_MAX >= limits.preview_values_max
    assert S.PREVIEW_LIST_ITEMS_MAX >= 2 * limits.preview_edge_items + 1
    assert S.STEPS_MAX >= Settings().trace_steps_max
    assert (S.DIMS_MAX, S.NAME_CHARS_MAX) == (64, 256)
    fields = {"fields": {f: [None, None] for f in (*TENSOR_FIELDS, *ARRAY_FIELDS, *MODULE_FIELDS, "storage")}}
    assert S.FieldChange.model_validate({"name": "x", **fields}).fields.keys() == fields["fields"].keys()


def test_the_inspectors_and_runners_cuts_fit_the_schemas_caps():
    """An honest snippet at a cap is cut by the worker (which must not import app.schemas), not
    refused by the server as an invalid result: the worker's copies of the caps fit."""
    from app.inspector.limits import InspectLimits
    from app.inspector.modules import NAME_CHARS as module_name_chars
    from app.inspector.tensors import NODE_NAME_CHARS as node_name_chars
    from app.sandbox import runner

    limits = InspectLimits()
    assert limits.label_chars_max <= S.LABEL_CHARS_MAX
    assert limits.name_chars_max <= S.NAME_CHARS_MAX
    assert limits.module_items_max <= S.MODULE_ITEMS_MAX
    assert limits.param_groups_max <= S.PARAM_GROUPS_MAX
    assert limits.settings_max <= S.SETTINGS_MAX
    assert limits.setting_items_max <= S.SETTING_ITEMS_MAX
    assert limits.saved_max <= S.SAVED_MAX
    assert limits.aliases_max <= S.ALIASES_MAX
    assert node_name_chars <= S.LABEL_CHARS_MAX and module_name_chars <= S.NAME_CHARS_MAX
    assert runner.LABEL_CHARS_MAX <= S.LABEL_CHARS_MAX
    assert 2 * runner.FRAMES_KEPT_EACH_END + 1 <= S.FRAMES_MAX
    assert 2 * runner.WARNINGS_KEPT + 2 <= S.WARNINGS_MAX


def _refused(flat: dict, fragment: str) -> None:
    with pytest.raises(ValidationError) as exc:
        both(flat)
    assert fragment in str(exc.value), str(exc.value)[:500]


def _nested(width: int, depth: int) -> list:
    value: list = [0.5] * width
    for _ in range(depth - 1):
        value = [value] * width
    return value


FORGED_TENSORS = {
    "negative dimension": (tensor(shape=[10, -1], numel=0), "negative dimension"),
    "10**30 dimension": (tensor(shape=[10**30, 1]), "less than or equal"),
    "65 dimensions": (tensor(shape=[1] * 65, stride=[1] * 65, numel=1), "at most 64"),
    "numel not the shape's": (tensor(numel=7), "numel"),
    "more elements than int64": (tensor(shape=[2**62, 2**62], numel=0, nbytes=0, byte_range=None), "numel"),
    "nbytes not numel * size": (tensor(nbytes=25), "nbytes"),
    "byte_range of one element": (tensor(byte_range=[0]), "at least 2"),
    "byte_range of three": (tensor(byte_range=[0, 1, 2]), "at most 2"),
    "byte_range lo > hi": (tensor(byte_range=[24, 0]), "lo <= hi"),
    "byte_range not the view's width": (tensor(byte_range=[0, 20]), "byte_range"),
    "stride of other length": (tensor(stride=[1]), "stride and shape"),
    "negative stride": (tensor(stride=[3, -1]), "greater than or equal"),
    "name past 256 chars": (tensor(name="x" * 257), "at most 256"),
    "alias past 256 chars": (tensor(aliases=["y" * 257]), "at most 256"),
    "storage id with markup": (tensor(storage='s0"><script>'), "pattern"),
    "flag with markup": (tensor(flags=["<b>"]), "pattern"),
    "element size 10**6": (tensor(element_size=10**6), "less than or equal"),
    "preview with a dict": (tensor(preview={"values": [{"a": 1}]}), "JSON scalars"),
    "preview nested 100 deep": (tensor(preview={"values": json.loads("[" * 100 + "]" * 100)}), "deeper"),
    "preview list of 8": (tensor(preview={"values": list(range(8))}), "too long"),
    "preview string of 5,000": (tensor(preview={"values": ["x" * 5000]}), "too long"),
    "preview of 7**5 values": (tensor(preview={"values": _nested(7, 5)}), "too many"),
    "preview integer of 70 bits": (tensor(preview={"values": [2**70]}), "64 bits"),
    "stats of infinity": (tensor(stats={"min": "-Infinity"}), "stats"),
}


@pytest.mark.parametrize("forged", FORGED_TENSORS, ids=str)
def test_a_forged_tensor_entry_is_refused(forged):
    entry, fragment = FORGED_TENSORS[forged]
    _refused(run(tensors=[entry]), fragment)


FORGED_RUNS = {
    "two tensors of one name": (run(tensors=[tensor(), tensor()]), "names repeat"),
    "501 tensors": (
        run(tensors=[tensor(name=f"t{i}", storage=None, byte_range=None) for i in range(501)]),
        "at most 500",
    ),
    "byte range past its storage": (
        run(storages=[{"id": "s0", "device": "cpu", "nbytes": 10, "members": []}]),
        "storage's nbytes",
    ),
    "member past its storage": (
        run(
            storages=[
                {
                    "id": "s0",
                    "device": "cpu",
                    "nbytes": 24,
                    "members": [{"name": "x", "kind": "tensor", "byte_range": [0, 99]}],
                }
            ]
        ),
        "nbytes",
    ),
    "storage ids repeat": (
        run(storages=[{"id": "s0", "device": "cpu", "nbytes": 24}] * 2),
        "storage ids repeat",
    ),
    "node id with DOT": (
        run(graph={"nodes": [{"id": 'n0 [URL="javascript:alert(1)"]; n0', "name": "A", "kind": "leaf"}]}),
        "pattern",
    ),
    "node ids repeat": (run(graph={"nodes": [{"id": "n0", "name": "A", "kind": "leaf"}] * 2}), "repeat"),
    "edge to no node": (
        run(graph={"nodes": [], "edges": [{"source": "n0", "target": "n9"}]}),
        "not in the graph",
    ),
    "steps misnumbered": (run(steps=[step(index=1)]), "numbered"),
    "step section not a list": (run(steps=[step({"tensors": {"keys": None, "set": "x"}})]), "list"),
    "step entry not a tensor": (run(steps=[step({"tensors": {"set": [{"a": 1}]}})]), "name"),
    "state of a million keys": (run(steps=[step({"tensors": {"keys": ["x"] * 10**6}})]), "at most 500"),
    "state that is a list": (run(steps=[step(None) | {"state": [1, 2]}]), "StateDelta"),
    "storage key with markup": (run(steps=[step(storage_keys={"s0": "<m1>"})]), "pattern"),
    "changes with a bad field key": (
        run(steps=[step(changes={"tensors": {"changed": [{"name": "x", "fields": {"Shape<>": [1, 2]}}]}})]),
        "pattern",
    ),
    "a field change of one value": (
        run(steps=[step(changes={"tensors": {"changed": [{"name": "x", "fields": {"shape": [[1]]}}]}})]),
        "at least 2",
    ),
    "hyperparameter holding a dict": (
        run(
            modules=[
                {
                    "name": "o",
                    "kind": "optimizer",
                    "class": "SGD",
                    "param_groups": [{"hyperparameters": {"lr": {"a": 1}}}],
                }
            ]
        ),
        "hyperparameters",
    ),
    "ok not a bool": (run(ok="maybe"), "ok"),
}


@pytest.mark.parametrize("forged", FORGED_RUNS, ids=str)
def test_a_forged_run_is_refused(forged):
    flat, fragment = FORGED_RUNS[forged]
    _refused(flat, fragment)


def test_claims_left_at_their_defaults_are_not_cross_checked():
    """A number the entry does not claim keeps its safe default (numel 0) and is not compared
    (tests and hand-made responses omit them); a claimed one is."""
    resp = both({"ok": True, "tensors": [{"name": "x", "shape": [2], "dtype": "f", "device": "c"}]})
    assert resp.tensors[0].numel == 0
    _refused(
        {"ok": True, "tensors": [{"name": "x", "shape": [2], "dtype": "f", "device": "c", "numel": 3}]},
        "numel",
    )


def test_a_numpy_string_array_previews_its_strings_whole():
    """Regression: preview strings were capped at 100 characters, and a numpy array of longer
    strings (its preview holds them whole) made an honest run a Crash."""
    import numpy as np

    from app.inspector import snapshot

    snap = snapshot({"a": np.array(["hello" * 50, "x"]), "o": np.array([{"k": 1}], dtype=object)})
    resp = both({"ok": True, **snap})
    preview = resp.arrays[0].preview
    assert preview is not None and isinstance(preview.values, list) and preview.values[0] == "hello" * 50


def test_a_nested_tensor_may_have_ragged_dimensions():
    """The inspector writes -1 for a nested tensor's ragged dimension; only there."""
    entry = tensor(
        shape=[2, -1],
        flags=["nested"],
        numel=5,
        nbytes=20,
        stride=None,
        storage=None,
        byte_range=None,
        preview=None,
    )
    assert both(run(tensors=[entry], storages=[])).tensors[0].shape == [2, -1]


def test_the_piecewise_validator_reports_where_and_bounds_the_message():
    """Its locations name the payload's dict keys: shortened, since they are shown."""
    flat = run(
        modules=[
            {
                "name": "o",
                "kind": "optimizer",
                "class": "SGD",
                "param_groups": [{"hyperparameters": {"k" * 10_000: {"a": 1}}}],
            }
        ]
    )
    with pytest.raises(Invalid) as exc:
        validate_run(flat)
    assert exc.value.where.startswith("modules.0.param_groups.0.hyperparameters.kkk")
    assert len(str(exc.value)) < 600


def test_slices_of_any_size_give_the_same_answer(traced, monkeypatch):
    import app.validate_pieces as V

    whole = both(traced)
    monkeypatch.setattr(V, "SLICE_S", 0.0)  # one item a slice
    assert validate_run(copy.deepcopy(traced)) == whole
    bad = copy.deepcopy(traced)
    bad["tensors"][-1]["shape"] = [-5]
    with pytest.raises(Invalid) as exc:
        validate_run(bad)
    assert exc.value.where.startswith(f"tensors.{len(bad['tensors']) - 1}")


def _oddities() -> dict:
    import numpy as np
    import torch

    a = np.arange(6.0)
    lin = torch.nn.Linear(3, 4)
    opt = torch.optim.Adam(lin.parameters(), lr=1e-3)
    lin(torch.randn(2, 3)).sum().backward()
    opt.step()
    opt.param_groups[0]["a key of one's own"], opt.param_groups[0]["lr"] = [1, 2, 3], 10**30
    return {
        "nested": {
            "jagged": torch.nested.nested_tensor([torch.ones(2), torch.ones(3)], layout=torch.jagged),
            "strided": torch.nested.nested_tensor([torch.ones(2, 2), torch.ones(3, 2)]),
        },
        "sparse": {
            "coo": torch.eye(3).to_sparse(),
            "csr": torch.eye(3).to_sparse_csr(),
            "huge": torch.sparse_coo_tensor(
                torch.zeros(2, 1, dtype=torch.long), torch.ones(1), (10**9, 10**9)
            ),
        },
        "meta and quantized": {
            "m": torch.empty(10**6, 10**6, device="meta"),
            "q": torch.quantize_per_tensor(torch.randn(4), 0.1, 0, torch.qint8),
        },
        "dtypes": {
            "c": torch.randn(3, dtype=torch.cfloat).conj(),
            "b": torch.ones(3) > 0,
            "u": torch.tensor([2**63 + 5], dtype=torch.uint64),
            "f8": torch.randn(4).to(torch.float8_e4m3fn),
            "z": torch.empty(0, 3),
        },
        "layouts": {
            "e": torch.ones(3).expand(4, 3),
            "d64": torch.ones([1] * 64),
            "w": torch.ones(10).as_strided((3, 3), (1, 1), 2),
            "lazy": torch.nn.LazyLinear(2),
            "lin": lin,
            "opt": opt,
        },
        "numpy": {
            "r": np.arange(10)[::-2],
            "st": np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")]),
            "dt": np.array(["2020-01-01"], dtype="datetime64[ns]"),
            "a0": np.array(5),
            "n": a,
            "t": torch.from_numpy(a[2:]),
            "bits": torch.from_numpy(a).view(torch.int32),
        },
        "names": {"é\u2603 <b>": torch.ones(1), "d": {("t", 1): torch.ones(2), 3.5: torch.zeros(1)}},
    }


@pytest.mark.parametrize(
    "case", ["nested", "sparse", "meta and quantized", "dtypes", "layouts", "numpy", "names"]
)
def test_the_inspectors_oddities_fit_the_schema(case):
    """Honest runs must never be refused: nested, sparse, meta, quantized tensors, odd dtypes and
    layouts, lazy modules, optimizers with huge and custom hyperparameters, numpy's odd arrays."""
    import warnings

    from app.inspector import snapshot

    with warnings.catch_warnings():  # torch's prototype and deprecation notices, as a snippet's
        warnings.simplefilter("ignore")
        snap = json.loads(json.dumps(snapshot(_oddities()[case])))
    resp = both({"ok": True, **snap})
    assert resp.tensors or resp.arrays
