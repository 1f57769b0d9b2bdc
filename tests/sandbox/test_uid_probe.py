"""The uid-drop probe must report unreadable paths (e.g. a repo under a mode-700 mktemp dir)
instead of hanging or crashing, and require_uid_drop makes that fatal."""

from __future__ import annotations

import os
import tempfile

import pytest

from app.sandbox.limits import SandboxLimits
from app.sandbox.outcome import SandboxStartError
from app.sandbox.pool import REPO_ROOT
from app.sandbox.probe import probe_readable_as
from tests.sandbox.conftest import PoolHarness

pytestmark = pytest.mark.integration
LIMITS = SandboxLimits(exec_timeout_s=1.0, kill_grace_s=0.5)


@pytest.fixture()
def private_dir():
    """A mode-700 directory (like mktemp -d) exposing the repo's app package through a link."""
    with tempfile.TemporaryDirectory() as path:
        os.chmod(path, 0o700)
        os.symlink(REPO_ROOT / "app", os.path.join(path, "app"))
        yield path


def test_probe_names_the_directory_that_blocks_the_sandbox_uid(private_dir):
    readable = os.path.dirname(os.__file__)
    if os.geteuid() != 0:
        assert probe_readable_as(LIMITS.sandbox_uid, LIMITS.sandbox_gid, [readable]) == [
            "probe child produced no answer"
        ]  # cannot drop uid: counts as a failed probe
        return
    blocked = probe_readable_as(LIMITS.sandbox_uid, LIMITS.sandbox_gid, [readable, private_dir + "/app"])
    assert blocked == [f"{private_dir} (PermissionError)"]


def test_unreadable_cwd_disables_the_drop_and_says_why(private_dir):
    harness = PoolHarness(LIMITS, cwd=private_dir, spares=1)
    try:
        info = harness.pool.health()["uid_drop"]
        assert info["active"] is False
        expected = "sandbox uid cannot read" if os.geteuid() == 0 else "not root"
        assert expected in info["reason"]
        if os.geteuid() == 0:
            assert private_dir in info["reason"]
        assert harness.result("print(1 + 1)")["stdout"]["text"] == "2\n"
    finally:
        harness.close()


def test_require_uid_drop_refuses_to_start_when_it_is_impossible(private_dir):
    with pytest.raises(SandboxStartError, match="cannot read|not root"):
        PoolHarness(LIMITS.replace(require_uid_drop=True), cwd=private_dir, spares=1)
