"""/api/health over HTTP against a real pool: the effective memory rlimit and the per-run limits
the workers got are shown (the pool sent them; the public model used to drop both)."""

import pytest

from tests.web.conftest import make_client

pytestmark = pytest.mark.integration


def test_health_shows_the_memory_rlimit_auto_chose_and_the_workers_limits():
    with make_client(memory_rlimit="auto", cpu_time_s=7) as client:
        pool = client.get("/api/health").json()["pool"]
        schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert pool["state"] == "ready"
    assert pool["memory_rlimit"] in ("as", "data")  # what "auto" became on this host
    assert pool["limits"]["memory_rlimit"] == "auto"  # what was asked for
    assert (pool["limits"]["exec_timeout_s"], pool["limits"]["cpu_time_s"]) == (2.0, 7)
    assert {"memory_rlimit", "limits"} <= set(schema["PoolHealth"]["properties"])
    assert "cpu_time_s" in schema["SandboxLimits"]["properties"]
