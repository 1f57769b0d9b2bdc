"""What Pool.health() sends is what /api/health shows: every key on both sides, typed.

Regression: the pool sent `memory_rlimit` (what TP_MEMORY_RLIMIT=auto chose) and `limits`, and
the public PoolHealth model, which ignores unknown keys, silently dropped both."""

from __future__ import annotations

import dataclasses

from app.sandbox.limits import SandboxLimits
from app.sandbox.pool import Pool
from app.schemas import PoolHealth


def _health(**ready_info) -> dict:
    pool = Pool(SandboxLimits(exec_timeout_s=2.5), max_concurrent_runs=3, queue_max=5)
    pool.ready_info.update(ready_info)
    return pool.health()


def test_every_key_the_pool_sends_is_a_field_and_every_field_is_sent():
    sent = set(_health())
    fields = {info.alias or name for name, info in PoolHealth.model_fields.items()}
    assert not sent - fields, f"sent by Pool.health(), dropped by PoolHealth: {sorted(sent - fields)}"
    assert not fields - sent, f"declared by PoolHealth, never sent: {sorted(fields - sent)}"


def test_the_health_model_dumps_back_what_the_pool_sent():
    health = _health(memory_rlimit="data", uid_drop={"active": False, "reason": "not root"})
    shown = PoolHealth.model_validate(health).model_dump(mode="json")
    assert shown == health
    assert shown["memory_rlimit"] == "data" and shown["limits"]["exec_timeout_s"] == 2.5


def test_the_limits_are_typed_by_the_sandbox_dataclass_itself():
    limits = PoolHealth.model_validate(_health()).limits
    assert isinstance(limits, SandboxLimits) and limits.exec_timeout_s == 2.5
    documented = PoolHealth.model_json_schema()["$defs"]["SandboxLimits"]["properties"]
    assert set(documented) == {f.name for f in dataclasses.fields(SandboxLimits)}


def test_memory_rlimit_is_null_until_the_zygote_said_which_it_chose():
    assert PoolHealth.model_validate(_health()).memory_rlimit is None
