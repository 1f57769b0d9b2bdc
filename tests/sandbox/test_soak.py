"""A small mixed-load soak over the real HTTP server (bench/soak.py has the 2,000-run version).
No timing assertions: correctness, nothing lost, bounded server memory, no process left."""

from __future__ import annotations

import pytest

from bench.soak import failures, soak

pytestmark = pytest.mark.integration


def test_small_soak_with_hostile_runs_loses_nothing_and_leaves_nothing():
    stats = soak(runs=120, concurrency=16, hostile_fraction=0.1, seed=7)
    assert stats["runs"] - stats["benign"] >= 5  # the seed really mixes hostile runs in
    assert sum(stats["hostile"].values()) == stats["runs"] - stats["benign"]
    assert failures(stats) == []
    assert stats["seen"]  # the process census saw the zygote and its workers
