"""Hostile snippets trying to escape the shared, fully confined pool: reading and writing
files, the network, signalling other processes, dangerous syscalls. See test_hostile.py for
the pattern (each attack contained, then the next benign run is right).
"""

from __future__ import annotations

import json
import os
import socket
import textwrap

import pytest

from app.sandbox.pool import REPO_ROOT
from tests.sandbox.conftest import SECRET_NAME
from tests.sandbox.hostile_kit import TRY, lines

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("next_run_is_right")]


# ---- files ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "/etc/shadow",
        str(REPO_ROOT / "pyproject.toml"),
        str(REPO_ROOT / "app" / "settings.py"),
        str(REPO_ROOT / ".git" / "HEAD"),
        "/proc/1/environ",
        "/root/.bash_history",
    ],
)
def test_reading_files_outside_the_allowed_tree_is_denied(sandbox, path):
    assert lines(sandbox, TRY + f"attempt(lambda: open({path!r}, 'rb').read(1))") == ["PermissionError 13"]


def test_the_zygotes_environment_cannot_be_read(sandbox):
    code = TRY + "import os\nattempt(lambda: open(f'/proc/{os.getppid()}/environ', 'rb').read())"
    res = sandbox.result(code)
    assert res["stdout"]["text"] == "PermissionError 13\n"
    assert SECRET_NAME not in json.dumps(res)


def test_listing_directories_outside_the_allowed_tree_is_denied(sandbox):
    code = (
        TRY
        + "import os\nfor d in ('/', '/root', '/tmp', '/work', '/proc/self'):\n"
        + "    attempt(lambda: os.listdir(d))"
    )
    assert lines(sandbox, code) == ["PermissionError 13"] * 5


@pytest.mark.parametrize("path", ["/tmp/tp-hostile", "/dev/shm/tp-hostile", str(REPO_ROOT / "tp-hostile")])
def test_writing_files_is_denied_everywhere(sandbox, path):
    assert lines(sandbox, TRY + f"attempt(lambda: open({path!r}, 'w').write('x'))") == ["PermissionError 13"]
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
    for sock, addr in (
        (tcp, ("127.0.0.1", 0)),
        (udp, ("127.0.0.1", 0)),
        (unix, f"\0tp-hostile-{os.getpid()}"),
    ):
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
    udp_port = udp.getsockname()[1]
    code = TRY + textwrap.dedent(f"""\
        import socket
        attempt(lambda: socket.create_connection(('127.0.0.1', {tcp.getsockname()[1]}), timeout=0.5))
        attempt(lambda: socket.socket(type=socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', {udp_port})))
        attempt(lambda: socket.socket(socket.AF_UNIX).connect({unix.getsockname()!r}))
        attempt(lambda: socket.socket(socket.AF_INET6))
        attempt(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW))
    """)
    assert lines(sandbox, code) == ["PermissionError 1"] * 5


def test_listening_on_a_port_is_refused(sandbox):
    code = TRY + "import socket\nattempt(lambda: socket.create_server(('0.0.0.0', 8080)))"
    assert lines(sandbox, code) == ["PermissionError 1"]


def test_in_process_socketpair_still_works_for_asyncio(sandbox):
    code = "import asyncio\nasync def main():\n    return 6 * 7\nprint(asyncio.run(main()))"
    assert lines(sandbox, code) == ["42"]


# ---- signals and the kernel -------------------------------------------------------------------


def test_killing_the_zygote_everything_or_the_server_is_refused(sandbox):
    code = TRY + textwrap.dedent(f"""\
        import os, signal
        attempt(lambda: os.kill(os.getppid(), signal.SIGKILL))
        attempt(lambda: os.kill(-1, signal.SIGKILL))
        attempt(lambda: os.kill({os.getpid()}, signal.SIGKILL))
        attempt(lambda: os.killpg(os.getpgid(os.getppid()), signal.SIGKILL))
    """)
    assert lines(sandbox, code) == ["PermissionError 1"] * 4


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
    assert lines(sandbox, code) == ["['usr1', 'usr1', 'usr1']"]


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
    assert lines(sandbox, code) == [f"-1 {expected}"]
