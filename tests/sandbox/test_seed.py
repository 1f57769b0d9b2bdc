"""Reproducible runs (issue #16): every run starts from the same seed, so the same code gives the
same snapshot on every run and on every replica (two separately started pools stand in for two
replicas, each with its own zygote). This is what a share link opened anywhere relies on."""

from __future__ import annotations

import json
import random
import textwrap
from typing import Any

import numpy as np
import pytest
import torch

from app.examples import EXAMPLES
from app.sandbox.limits import SandboxLimits
from app.sandbox.pool import clean_env
from app.sandbox.protocol import SEED_END
from app.sandbox.trace_options import TraceOptions
from tests.sandbox.conftest import PoolHarness

pytestmark = pytest.mark.integration

TIMING_KEYS = frozenset({"duration_ms", "wall_ms"})
# Every way a run can be asked for: plain, stepped with states (the page's old mode), stepped
# changes-only, and the outline with one step's state (the page's cheap mode).
MODES: dict[str, Any] = {
    "plain": None,
    "states": TraceOptions(states=True).to_wire(),
    "changes": TraceOptions(states=False).to_wire(),
    "outline": TraceOptions(outline=True, state_at=1).to_wire(),
}
WORDS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa")
# Draws from all three generators, prints a set of strings (its order is the string hashes'), and
# leaves random tensors, an array and a module in the snapshot.
SNIPPET = textwrap.dedent(f"""\
    import random, sys
    import numpy as np
    import torch
    t = torch.randn(3)
    a = np.random.rand(3)
    r = random.random()
    lin = torch.nn.Linear(3, 2)
    y = lin(t)
    names = set({WORDS!r})
    print(t.tolist(), a.tolist(), r)
    print(names, sorted(names, key=hash)[0])
    print(torch.initial_seed(), torch.get_num_threads(), torch.get_num_interop_threads())
    print(sys.flags.hash_randomization)
""")


def without_timing(value: Any) -> Any:
    """The result with every timing field gone: what must be equal run to run."""
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """Where two results first differ (a dotted path and both values), for the failure message."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = first_difference(a.get(key), b.get(key), f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        pairs = enumerate(zip(a, b, strict=True))
        return next((d for i, (x, y) in pairs if (d := first_difference(x, y, f"{path}[{i}]"))), None)
    return None if a == b else f"{path}: {json.dumps(a)[:200]} != {json.dumps(b)[:200]}"


def expected_first_line(seed: int) -> str:
    """What SNIPPET's first print shows when torch, numpy and random start from `seed` (drawn
    here, in the test's own process, from fresh generators)."""
    t = torch.randn(3, generator=torch.Generator().manual_seed(seed))
    a = np.random.RandomState(seed).rand(3)
    return f"{t.tolist()} {a.tolist()} {random.Random(seed).random()}"


@pytest.fixture(scope="module")
def replicas() -> Any:
    """Two pools, each with its own zygote: two replicas of one server."""
    limits = SandboxLimits(exec_timeout_s=10.0, kill_grace_s=1.0)
    first = PoolHarness(limits, spares=1)
    try:
        second = PoolHarness(limits, spares=1)
    except BaseException:
        first.close()
        raise
    yield first, second
    first.close()
    second.close()


def run(pool: PoolHarness, code: str, mode: str = "plain", **kwargs: Any) -> dict:
    result = pool.result(code, trace=MODES[mode], **kwargs)
    assert result["error"] is None, result["error"]
    return result


@pytest.mark.parametrize("mode", MODES)
def test_same_code_same_result_on_two_replicas_and_two_runs(replicas, mode):
    first, second = replicas
    a, again, b = run(first, SNIPPET, mode), run(first, SNIPPET, mode), run(second, SNIPPET, mode)
    assert without_timing(a) == without_timing(b), first_difference(without_timing(a), without_timing(b))
    assert without_timing(a) == without_timing(again), first_difference(
        without_timing(a), without_timing(again)
    )
    assert a["snapshot"]["tensors"] and a["seed"] == 0
    if mode != "plain":
        assert a["steps"], "a traced run has steps to compare"
    lines = a["stdout"]["text"].splitlines()
    assert lines[0] == expected_first_line(0)  # seeded after anything the zygote or spare drew
    assert lines[2:] == ["0 1 1", "0"]  # initial_seed, one intra-op and one inter-op thread


def test_set_order_is_the_same_in_every_zygote(replicas):
    """Regression: the zygote ran under `python -E`, which ignores PYTHONHASHSEED, so each zygote
    hashed strings with its own random key and print({'alpha', 'beta', ...}) came out in another
    order on each replica (and after each restart)."""
    first, second = replicas
    code = "print({'a', 'b', 'c'}, hash('tensor'), __import__('sys').flags.hash_randomization)"
    a, b = run(first, code)["stdout"]["text"], run(second, code)["stdout"]["text"]
    assert a == b
    assert a.split()[-1] == "0"


def test_another_seed_gives_other_numbers_the_same_way_everywhere(replicas):
    first, second = replicas
    a, b = run(first, SNIPPET, seed=7), run(second, SNIPPET, seed=7)
    assert without_timing(a) == without_timing(b)
    assert a["seed"] == 7
    lines = a["stdout"]["text"].splitlines()
    assert lines[0] == expected_first_line(7) != expected_first_line(0)
    assert lines[2].split()[0] == "7"


def test_the_largest_seed_is_numpys_largest(replicas):
    first, _ = replicas
    top = SEED_END - 1
    assert run(first, SNIPPET, seed=top)["stdout"]["text"].splitlines()[0] == expected_first_line(top)
    with pytest.raises(ValueError, match="outside"):
        first.run("x = 1", seed=SEED_END)


def test_a_snippet_that_seeds_itself_gets_its_own_seeds_numbers(replicas):
    first, _ = replicas
    code = textwrap.dedent("""\
        import random
        import numpy as np
        import torch
        torch.manual_seed(5)
        np.random.seed(5)
        random.seed(5)
        print(torch.randn(3).tolist(), np.random.rand(3).tolist(), random.random())
    """)
    for seed in (0, 9):
        result = run(first, code, seed=seed)
        assert result["stdout"]["text"] == expected_first_line(5) + "\n"
        assert result["seed"] == seed  # what it started with, not what it chose


@pytest.mark.parametrize("mode", ["plain", "states"])
def test_every_lesson_gives_the_same_snapshot_on_every_replica(replicas, mode):
    """A share link of a lesson opened on any replica shows the same numbers."""
    first, second = replicas
    for example in EXAMPLES:
        code = textwrap.dedent(example.code)
        a, b = first.result(code, trace=MODES[mode]), second.result(code, trace=MODES[mode])
        again = first.result(code, trace=MODES[mode])
        a, b, again = without_timing(a), without_timing(b), without_timing(again)
        assert a == b, f"{example.id} ({mode}), two replicas: {first_difference(a, b)}"
        assert a == again, f"{example.id} ({mode}), two runs: {first_difference(a, again)}"
        assert a["snapshot"] is not None, example.id


def test_no_python_variable_reaches_the_zygote_but_the_hash_seed(monkeypatch):
    """The zygote runs without -E (it would ignore PYTHONHASHSEED), so the interpreter reads the
    PYTHON* variables it is given: none of the server's may pass through, whatever is asked."""
    monkeypatch.setenv("PYTHONPATH", "/tmp/evil")
    monkeypatch.setenv("PYTHONHASHSEED", "random")
    monkeypatch.setenv("pythonstartup", "/tmp/evil.py")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    env = clean_env(("PYTHONPATH", "PYTHONHASHSEED", "pythonstartup", "CUDA_VISIBLE_DEVICES"))
    assert env["PYTHONHASHSEED"] == "0" and env["CUDA_VISIBLE_DEVICES"] == "0"
    assert [n for n in env if n.upper().startswith("PYTHON")] == ["PYTHONHASHSEED"]
