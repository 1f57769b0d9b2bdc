"""Confinement layers: detection, reporting, fail-closed start-up, and each layer on its own
(the landlock_only / seccomp_only pools switch the other layers off)."""

from __future__ import annotations

import os
import socket
import textwrap

import pytest

from app.sandbox import landlock, seccomp_filter
from app.sandbox.limits import ALL_REQUIRED, LAYERS, SandboxLimits, parse_disabled, parse_required
from app.sandbox.outcome import SandboxStartError
from tests.sandbox.conftest import PoolHarness

pytestmark = pytest.mark.integration


def _host_supports() -> set[str]:
    """What this machine's kernel and packages can give, judged from outside the sandbox."""
    expected = {"dumpable_off", "subreaper", "no_new_privs"}
    abi = landlock.abi_version()
    expected |= {"landlock_fs"} if abi >= 1 else set()
    expected |= {"landlock_net"} if abi >= 4 else set()
    expected |= {"landlock_scope"} if abi >= 6 else set()
    expected |= {"seccomp"} if seccomp_filter.available()[0] else set()
    expected |= {"netns"} if os.geteuid() == 0 else set()
    return expected


def test_every_layer_the_host_supports_is_active_and_the_rest_say_why(sandbox):
    report = sandbox.pool.health()["confinement"]
    assert _host_supports() <= set(report["active"]), report["missing"]
    assert set(report["active"]) | set(report["missing"]) == set(LAYERS)
    assert all(isinstance(why, str) and why for why in report["missing"].values())
    assert report["landlock_abi"] == landlock.abi_version()


def test_ready_frame_and_health_agree(sandbox):
    assert sandbox.pool.ready_info["confinement"]["active"] == sandbox.pool.health()["confinement"]["active"]


def test_disabled_layers_are_reported_missing_with_the_reason(landlock_only):
    report = landlock_only.pool.health()["confinement"]
    assert {"seccomp", "netns"} <= set(report["missing"])
    assert "disable_layers" in report["missing"]["seccomp"]


def test_a_required_layer_that_is_missing_refuses_to_start():
    limits = SandboxLimits(
        exec_timeout_s=1.0, kill_grace_s=0.5, disable_layers="netns", require_layers="netns"
    )
    with pytest.raises(SandboxStartError, match="required confinement layers missing: netns"):
        PoolHarness(limits, spares=1)


def test_layer_names_are_checked():
    assert parse_required("all") == ALL_REQUIRED and "netns" not in ALL_REQUIRED
    assert parse_required("all, netns")[-1] == "netns"
    assert parse_required(" seccomp ,landlock_fs") == ("seccomp", "landlock_fs")
    assert parse_disabled("") == ()
    with pytest.raises(ValueError, match="unknown confinement layers"):
        SandboxLimits(require_layers="seccomp,landlok_fs")
    with pytest.raises(ValueError, match="cannot disable"):
        SandboxLimits(disable_layers="no_new_privs")


@pytest.mark.parametrize(
    "abi, fs, net, scope",
    [(0, False, False, False), (3, True, False, False), (5, True, True, False), (7, True, True, True)],
)
def test_landlock_degrades_by_abi_and_says_what_is_missing(abi, fs, net, scope):
    what = landlock.describe(abi)
    assert (what["fs"], what["net"], what["scope"]) == (fs, net, scope)
    assert len(what["missing"]) == [fs, net, scope].count(False)


def test_compiled_seccomp_program_carries_a_patchable_pid():
    compiled = seccomp_filter.compile()
    assert compiled["pid_slots"] and len(compiled["program"]) % 8 == 0


# ---- each layer alone ----------------------------------------------------------------------


def _listener(kind: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, kind)
    sock.bind(("127.0.0.1", 0))
    if kind == socket.SOCK_STREAM:
        sock.listen(8)
    sock.setblocking(False)
    return sock


def _nothing_arrived(sock: socket.socket) -> bool:
    try:
        if sock.type == socket.SOCK_STREAM:
            sock.accept()
        else:
            sock.recvfrom(100)
    except BlockingIOError:
        return True
    return False


def test_landlock_alone_denies_tcp_connect_reads_and_writes(landlock_only):
    with _listener(socket.SOCK_STREAM) as server:
        port = server.getsockname()[1]
        code = textwrap.dedent(f"""\
            import socket
            for attempt in (lambda: socket.create_connection(('127.0.0.1', {port}), timeout=0.5),
                            lambda: open('/etc/passwd').read(), lambda: open('/tmp/tp-landlock', 'w')):
                try:
                    attempt()
                    print('allowed')
                except PermissionError:
                    print('denied')
        """)
        res = landlock_only.result(code)
        assert res["stdout"]["text"] == "denied\ndenied\ndenied\n", res
        assert _nothing_arrived(server)
    assert not os.path.exists("/tmp/tp-landlock")


def test_seccomp_alone_denies_sockets_processes_exec_and_foreign_signals(seccomp_only):
    code = textwrap.dedent("""\
        import os, signal, socket
        for attempt in (lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM), os.fork,
                        lambda: os.execv('/bin/true', ['true']), lambda: os.kill(os.getppid(), 0)):
            try:
                attempt()
                print('allowed')
            except PermissionError:
                print('denied')
        os.kill(os.getpid(), 0)  # signalling itself stays allowed
        print('self ok')
    """)
    res = seccomp_only.result(code)
    assert res["stdout"]["text"] == "denied\n" * 4 + "self ok\n", res


def test_file_size_limit_is_an_os_error_not_a_death(seccomp_only):
    # Needs a writable directory, so it runs without Landlock (which would deny the open itself).
    code = "import tempfile\nwith tempfile.TemporaryFile() as f:\n    f.write(b'x' * (2 * 2**20))"
    res = seccomp_only.result(code)
    assert res["error"]["type"] == "OSError"
    assert "File too large" in res["error"]["message"]


def test_a_child_that_cannot_apply_a_probed_layer_exits_before_taking_a_job():
    """Fail closed per child: the probe found seccomp working, this child cannot load it."""
    from app.sandbox.child import ChildPlan, child_main
    from app.sandbox.confinement import ChildLayers
    from app.sandbox.layers import FeatureState, RulesetState, SeccompState

    states = {
        "no_new_privs": None,
        "seccomp": SeccompState(None, "pretend libseccomp vanished"),
        "landlock_fs": RulesetState(0, None, "off"),
        "landlock_net": FeatureState(0, False, False),
        "landlock_scope": FeatureState(0, False, False),
    }
    plan = ChildPlan(
        limits=SandboxLimits(),
        memory_rlimit="as",
        nproc=None,
        drop_uid=False,
        layers=ChildLayers(states),
        expect_layers=("no_new_privs", "seccomp"),
    )
    job_r, job_w = os.pipe()
    res_r, res_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        child_main(plan, job_r, res_w, os.getppid())  # never returns
    for fd in (job_r, res_w, job_w):  # no job will come: a child that waited for one gets EOF (71)
        os.close(fd)
    try:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 72
        assert os.read(res_r, 100) == b""  # no result: it never ran anything
    finally:
        os.close(res_r)
