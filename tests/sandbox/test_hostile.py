"""Hostile snippets against the shared, fully confined pool.

Every test asserts that its attack was contained; the autouse fixture then asserts that the
zygote is the same process as before (not killed, not restarted) and that the very next benign
run gives the right answer. Attacks that a specific layer stops assert that layer's own error
(EPERM from seccomp, EACCES from Landlock), so the test fails if that layer regresses;
test_confinement checks that every layer this host supports is active.
"""
from __future__ import annotations

import json
import os
import socket
import textwrap
import time

import pytest

from app.sandbox.pool import REPO_ROOT
from tests.sandbox.conftest import SECRET_NAME

pytestmark = pytest.mark.integration

BENIGN = "import torch\nx = torch.arange(4) * 2\nprint(x.tolist())"


@pytest.fixture(autouse=True)
def next_run_is_right(sandbox):
    before = sandbox.pool.health()
    yield
    after = sandbox.pool.health()
    assert (after["zygote_pid"], after["restarts"]) == (before["zygote_pid"], before["restarts"])
    res = sandbox.result(BENIGN)
    assert res["ok"] is True, res
    assert res["stdout"]["text"] == "[0, 2, 4, 6]\n"
    assert [(t["name"], t["shape"]) for t in res["snapshot"]["tensors"]] == [("x", [4])]


def _lines(sandbox, code: str, **kwargs) -> list[str]:
    res = sandbox.result(textwrap.dedent(code), **kwargs)
    assert res["error"] is None, res["error"]
    return res["stdout"]["text"].splitlines()


def _gone(pid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.02)
    return False


TRY = textwrap.dedent("""\
    def attempt(fn):
        try:
            fn()
            print('allowed')
        except OSError as exc:
            print(type(exc).__name__, exc.errno)
""")


# ---- time, memory, processes, threads ---------------------------------------------------------

@pytest.mark.parametrize("code", ["while True:\n    pass", "import time\ntime.sleep(60)"])
def test_busy_loop_and_sleep_hit_the_time_limit(sandbox, code):
    assert sandbox.result(code)["error"]["type"] == "TimeLimit"


@pytest.mark.parametrize("code", [
    "chunks = []\nwhile True:\n    chunks.append(bytearray(64 * 2**20))",
    "import torch\nt = torch.empty(2**40, dtype=torch.uint8)",
])
def test_memory_growth_and_one_huge_allocation_hit_the_memory_limit(sandbox, code):
    # A generous time limit: zero-filling a gigabyte on a loaded machine can take a while.
    assert sandbox.result(code, timeout_s=20)["error"]["type"] == "MemoryLimit"


def test_fork_bomb_is_refused_at_the_first_fork(sandbox):
    res = sandbox.result("import os\nn = 0\nwhile True:\n    os.fork()\n    n += 1")
    assert (res["error"]["type"], res["error"]["line"]) == ("PermissionError", 4)
    assert "Operation not permitted" in res["error"]["message"]


def test_thread_bomb_ends_and_its_threads_die_with_the_run(sandbox):
    code = textwrap.dedent("""\
        import threading, time
        while True:
            threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
    """)
    outcome = sandbox.run(code)
    assert outcome.result()["error"]["type"] in ("RuntimeError", "MemoryLimit", "TimeLimit")
    assert _gone(outcome.pid)


def test_threads_still_running_after_the_snippet_are_killed_with_it(sandbox):
    code = textwrap.dedent("""\
        import os, threading, time
        def late():
            time.sleep(0.3)
            print('late')
            for fd in range(3, 64):
                try:
                    os.write(fd, b'\\x00\\x00\\x00\\x02{}')
                except OSError:
                    pass
        threading.Thread(target=late).start()
        print('done')
    """)
    outcome = sandbox.run(code)
    assert outcome.result()["stdout"]["text"] == "done\n"
    assert _gone(outcome.pid)


@pytest.mark.parametrize("code", [
    "import subprocess\nsubprocess.run(['/bin/sh', '-c', 'id'])",
    "import os, sys\nos.execv(sys.executable, [sys.executable, '-c', 'print(1)'])",
    "import os\nos.posix_spawn('/bin/true', ['true'], {})",
])
def test_subprocess_exec_and_spawn_are_refused(sandbox, code):
    res = sandbox.result(code)
    assert res["error"]["type"] == "PermissionError", res["error"]


def test_os_system_cannot_run_a_shell(sandbox):
    zygote = sandbox.pool.health()["zygote_pid"]
    lines = _lines(sandbox, f"import os\nprint(os.system('kill -9 {zygote}'))")
    assert lines == [str(127 << 8)]  # glibc's "could not spawn the shell" status


# ---- files ----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/etc/passwd", "/etc/shadow", str(REPO_ROOT / "pyproject.toml"), str(REPO_ROOT / "app" / "settings.py"),
    str(REPO_ROOT / ".git" / "HEAD"), "/proc/1/environ", "/root/.bash_history",
])
def test_reading_files_outside_the_allowed_tree_is_denied(sandbox, path):
    assert _lines(sandbox, TRY + f"attempt(lambda: open({path!r}, 'rb').read(1))") == ["PermissionError 13"]


def test_the_zygotes_environment_cannot_be_read(sandbox):
    code = TRY + "import os\nattempt(lambda: open(f'/proc/{os.getppid()}/environ', 'rb').read())"
    res = sandbox.result(code)
    assert res["stdout"]["text"] == "PermissionError 13\n"
    assert SECRET_NAME not in json.dumps(res)


def test_listing_directories_outside_the_allowed_tree_is_denied(sandbox):
    code = TRY + "import os\nfor d in ('/', '/root', '/tmp', '/work', '/proc/self'):\n    attempt(lambda: os.listdir(d))"
    assert _lines(sandbox, code) == ["PermissionError 13"] * 5


@pytest.mark.parametrize("path", ["/tmp/tp-hostile", "/dev/shm/tp-hostile", str(REPO_ROOT / "tp-hostile")])
def test_writing_files_is_denied_everywhere(sandbox, path):
    assert _lines(sandbox, TRY + f"attempt(lambda: open({path!r}, 'w').write('x'))") == ["PermissionError 13"]
    assert not os.path.exists(path)


def test_filling_an_anonymous_file_stops_at_the_file_size_limit(sandbox):
    code = "import os\nfd = os.memfd_create('fill')\nwhile True:\n    os.write(fd, b'x' * 2**20)"
    res = sandbox.result(code)
    assert (res["error"]["type"], "File too large" in res["error"]["message"]) == ("OSError", True)


def test_flooding_the_result_pipe_is_cut_off(sandbox):
    code = textwrap.dedent("""\
        import os, stat
        for fd in range(3, 64):
            try:
                if stat.S_ISFIFO(os.fstat(fd).st_mode):
                    while True:
                        os.write(fd, b'\\xff' * 2**16)
            except OSError:
                pass
    """)
    outcome = sandbox.run(code)
    assert outcome.status == "result_too_large"
    assert outcome.result()["error"]["type"] == "OutputLimit"


# ---- network --------------------------------------------------------------------------------

@pytest.fixture()
def listeners():
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    for sock, addr in ((tcp, ("127.0.0.1", 0)), (udp, ("127.0.0.1", 0)), (unix, f"\0tp-hostile-{os.getpid()}")):
        sock.bind(addr)
        sock.setblocking(False)
    tcp.listen(8)
    unix.listen(8)
    yield tcp, udp, unix
    for sock in (tcp, udp, unix):
        _assert_nothing_arrived(sock)
        sock.close()


def _assert_nothing_arrived(sock: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        sock.recvfrom(100) if sock.type == socket.SOCK_DGRAM else sock.accept()


def test_tcp_udp_and_unix_sockets_to_the_host_are_refused(sandbox, listeners):
    tcp, udp, unix = listeners
    code = TRY + textwrap.dedent(f"""\
        import socket
        attempt(lambda: socket.create_connection(('127.0.0.1', {tcp.getsockname()[1]}), timeout=0.5))
        attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', {udp.getsockname()[1]})))
        attempt(lambda: socket.socket(socket.AF_UNIX).connect({unix.getsockname()!r}))
        attempt(lambda: socket.socket(socket.AF_INET6))
        attempt(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW))
    """)
    assert _lines(sandbox, code) == ["PermissionError 1"] * 5


def test_listening_on_a_port_is_refused(sandbox):
    code = TRY + "import socket\nattempt(lambda: socket.create_server(('0.0.0.0', 8080)))"
    assert _lines(sandbox, code) == ["PermissionError 1"]


def test_in_process_socketpair_still_works_for_asyncio(sandbox):
    code = "import asyncio\nasync def main():\n    return 6 * 7\nprint(asyncio.run(main()))"
    assert _lines(sandbox, code) == ["42"]


# ---- signals and the kernel -------------------------------------------------------------------

def test_killing_the_zygote_everything_or_the_server_is_refused(sandbox):
    code = TRY + textwrap.dedent(f"""\
        import os, signal
        attempt(lambda: os.kill(os.getppid(), signal.SIGKILL))
        attempt(lambda: os.kill(-1, signal.SIGKILL))
        attempt(lambda: os.kill({os.getpid()}, signal.SIGKILL))
        attempt(lambda: os.killpg(os.getpgid(os.getppid()), signal.SIGKILL))
    """)
    assert _lines(sandbox, code) == ["PermissionError 1"] * 4


def test_a_snippet_may_still_signal_itself(sandbox):
    code = textwrap.dedent("""\
        import os, signal, threading
        got = []
        signal.signal(signal.SIGUSR1, lambda *a: got.append('usr1'))
        os.kill(os.getpid(), signal.SIGUSR1)
        signal.raise_signal(signal.SIGUSR1)
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)
        print(got)
    """)
    assert _lines(sandbox, code) == ["['usr1', 'usr1', 'usr1']"]


SYSCALLS = {  # name: (number on x86_64, args) - each must fail with EPERM (clone3: ENOSYS)
    "ptrace_attach_parent": (101, "16, os.getppid(), 0, 0"),
    "unshare_user_ns": (272, "0x10000000"),
    "mount": (165, "None, b'/tmp', b'tmpfs', 0, None"),
    "keyctl": (250, "0, 0, 0, 0"),
    "bpf": (321, "0, None, 0"),
    "perf_event_open": (298, "None, 0, -1, -1, 0"),
    "userfaultfd": (323, "0"),
    "io_uring_setup": (425, "1, None"),
    "clone_process": (56, "17, 0, 0, 0, 0"),
    "clone_thread_in_new_netns": (56, "0x40000000 | 0x00010000 | 0x00000800 | 0x00000100, 0, 0, 0, 0"),
    "clone3": (435, "None, 0"),
    "setns": (308, "0, 0"),
    "pidfd_open_parent": (434, "os.getppid(), 0"),
}


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="raw syscall numbers are x86_64's")
@pytest.mark.parametrize("name", SYSCALLS)
def test_dangerous_syscalls_are_refused(sandbox, name):
    number, args = SYSCALLS[name]
    code = textwrap.dedent(f"""\
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        print(libc.syscall({number}, {args}), os.strerror(ctypes.get_errno()))
    """)
    expected = "Function not implemented" if name == "clone3" else "Operation not permitted"
    assert _lines(sandbox, code) == [f"-1 {expected}"]


# ---- crashes and exits ----------------------------------------------------------------------

def test_segfault_via_ctypes_is_a_crash(sandbox):
    outcome = sandbox.run("import ctypes\nctypes.string_at(0)")
    assert (outcome.status, outcome.signal) == ("crash", "SIGSEGV")


def test_os_exit_mid_run_is_a_crash_with_its_code(sandbox):
    outcome = sandbox.run("print('half')\nimport os\nos._exit(0)")
    assert (outcome.status, outcome.exit_code) == ("crash", 0)
    assert outcome.result()["error"]["type"] == "Crash"


def test_sys_exit_mid_run_keeps_what_ran_before(sandbox):
    res = sandbox.result("import sys, torch\nkept = torch.ones(2)\nsys.exit(3)\nnever = 1")
    assert (res["error"]["type"], res["error"]["line"]) == ("SystemExit", 3)
    assert [t["name"] for t in res["snapshot"]["tensors"]] == ["kept"]


@pytest.mark.parametrize("limit", [None, 10**7])
def test_deep_recursion_is_contained(sandbox, limit):
    raise_limit = f"import sys\nsys.setrecursionlimit({limit})\n" if limit else ""
    outcome = sandbox.run(raise_limit + "def f(n):\n    return f(n + 1)\nf(0)")
    res = outcome.result()
    assert res["ok"] is False
    if limit is None:
        assert res["error"]["type"] == "RecursionError"


# ---- output ---------------------------------------------------------------------------------

@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_output_floods_end_with_output_limit_and_keep_a_prefix(sandbox, stream):
    res = sandbox.result(f"import sys\nwhile True:\n    print('y' * 4095, file=sys.{stream})")
    assert res["error"]["type"] == "OutputLimit"
    assert res[stream]["truncated"] is True
    assert res[stream]["text"] == ("y" * 4095 + "\n") * 16


def test_fake_frames_on_stdout_reach_nobody(sandbox):
    code = textwrap.dedent("""\
        import os, sys
        frame = b'\\x00\\x00\\x00\\x0b{"ok":true}'
        os.write(1, frame)
        os.write(2, frame)
        sys.__stdout__.write(frame.decode())
        print('visible')
    """)
    res = sandbox.result(code)
    assert res["stdout"]["text"] == "visible\n"


def test_forged_result_frame_only_forges_this_runs_own_result(sandbox):
    forged = json.dumps({"ok": True, "stdout": {"text": "forged", "truncated": False}, "stderr": {"text": "",
                         "truncated": False}, "error": None, "duration_ms": 0.0, "snapshot": None, "warnings": []})
    code = textwrap.dedent(f"""\
        import os, stat, time
        data = {forged!r}.encode()
        for fd in range(3, 64):
            try:
                if stat.S_ISFIFO(os.fstat(fd).st_mode):
                    os.write(fd, len(data).to_bytes(4, 'big') + data + b'\\x00\\x00\\x00\\x01x')
            except OSError:
                pass
        time.sleep(5)
    """)
    outcome = sandbox.run(code)
    assert outcome.result()["stdout"]["text"] == "forged"  # the run is its own to lie about


def test_garbage_result_frame_is_an_unreadable_result(sandbox):
    code = textwrap.dedent("""\
        import os, stat, time
        for fd in range(3, 64):
            try:
                if stat.S_ISFIFO(os.fstat(fd).st_mode):
                    os.write(fd, b'\\x00\\x00\\x00\\x05{{{{{')
            except OSError:
                pass
        time.sleep(5)
    """)
    err = sandbox.result(code)["error"]
    assert (err["type"], err["message"]) == ("Crash", "the worker sent an unreadable result")


def test_non_utf8_and_control_characters_in_output_and_names(sandbox):
    code = textwrap.dedent("""\
        import sys, torch
        print('a\\udcff\\x00\\x1b[31mb\\r\\x07')
        sys.stderr.write('\\ud800 lone surrogate\\n')
        globals()['\\x00\\x1b[2J name'] = torch.ones(1)
        globals()['\\udcff'] = torch.ones(2)
    """)
    res = sandbox.result(code)
    assert res["ok"] is True, res["error"]
    assert res["stdout"]["text"] == "a?\x00\x1b[31mb\r\x07\n"
    assert res["stderr"]["text"] == "? lone surrogate\n"
    # Regression: a lone surrogate in a name reached the API and its JSON encoder raised (500).
    names = sorted(t["name"] for t in res["snapshot"]["tensors"])
    assert names == ["\x00\x1b[2J name", "?"]
    json.dumps(res, ensure_ascii=False).encode("utf-8")


# ---- the inspector and torch, attacked from inside --------------------------------------------

def test_monkeypatched_torch_that_lies_or_raises_does_not_break_the_run(sandbox):
    code = textwrap.dedent("""\
        import torch
        x = torch.ones(3)
        torch.Tensor.__repr__ = lambda self: 1 / 0
        torch.Tensor.size = lambda self, *a: (99,)
        torch.Tensor.tolist = lambda self: 'lie'
        torch.Tensor.data_ptr = lambda self: 1 / 0
    """)
    res = sandbox.result(code)
    assert res["error"] is None
    assert res["snapshot"] is None or [t["shape"] for t in res["snapshot"]["tensors"]] == [[3]]


@pytest.mark.parametrize("patch, warning", [
    ("i.snapshot = lambda ns: 1 / 0", "inspector failed: ZeroDivisionError"),
    ("import sys\nsys.modules['app.inspector'] = None", "inspector unavailable"),
])
def test_a_sabotaged_inspector_only_loses_this_runs_snapshot(sandbox, patch, warning):
    res = sandbox.result(f"import app.inspector as i\n{patch}")
    assert res["snapshot"] is None
    assert any(w.startswith(warning) for w in res["warnings"]), res["warnings"]


def test_an_inspector_that_lies_only_lies_about_this_run(sandbox):
    res = sandbox.result("import app.inspector as i\ni.snapshot = lambda ns: {'tensors': 'lies'}")
    assert res["snapshot"] == {"tensors": "lies"}  # validated away by the web layer (app.convert)


# ---- snapshot bombs -------------------------------------------------------------------------

@pytest.mark.parametrize("code", [
    "import torch\nts = torch.zeros(10**6).split(1)",  # a million tiny tensors
    "a = []\nfor _ in range(10**6):\n    a = [a]",  # a million nested lists
    "import torch\nd = {('k' * 10**6) + str(i): torch.ones(1) for i in range(50)}",  # 50 MB of names
    "d = {i: {i: [i] * 10} for i in range(10**6)}",
])
def test_snapshot_bombs_give_a_bounded_result(sandbox, code):
    outcome = sandbox.run(code, timeout_s=10)
    assert outcome.status == "ok"
    assert len(outcome.payload) < 4 * 2**20
    res = outcome.result()
    assert res["ok"] is True, res["error"]


def test_a_million_node_autograd_graph_gives_a_bounded_result(sandbox):
    """Regression: the graph filled the memory budget, json.dumps of the result then raised
    MemoryError outside every guard and the worker died with exit code 71 ("Crash")."""
    code = "import torch\nx = torch.ones(1, requires_grad=True)\ny = x\nfor _ in range(10**6):\n    y = y * 1"
    outcome = sandbox.run(code, timeout_s=30)
    assert outcome.status == "ok"
    assert len(outcome.payload) < sandbox.pool.limits.result_max_bytes
    res = outcome.result()
    if res["ok"]:
        assert res["snapshot"]["truncated"] is True
    else:
        assert res["error"]["type"] == "MemoryLimit", res["error"]
