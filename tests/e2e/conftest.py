"""Real server (uvicorn subprocess, real sandbox) + real headless Chromium, one of each per session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("TP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STARTUP_S = 120  # a cold zygote imports torch; this bounds the wait, it asserts nothing


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/api/health", timeout=2) as r:
            return json.load(r).get("ok") is True
    except OSError:
        return False


@contextmanager
def running_server(log_dir: Path):
    """uvicorn serving app.main:app on a free port, stopped (and reaped) on exit."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = log_dir / "uvicorn.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    with serving(proc, lambda: _healthy(url), log_path, "server"):
        yield url


@contextmanager
def serving(proc: subprocess.Popen, is_up, log_path: Path, what: str, poll_s: float = 0.2):
    """Once `proc` answers (is_up()), for the with-block; then terminated and reaped. A process
    that exits or is not up within STARTUP_S fails with the end of its log."""
    try:
        deadline = time.monotonic() + STARTUP_S
        while not is_up():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start:\n" + log_path.read_text()[-3000:])
            time.sleep(poll_s)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("server")) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # runs go through a real sandbox; bound, not measured

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup.sh test installs chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@contextmanager
def page_at(browser, width: int, height: int, known_errors: tuple[str, ...] = ()):
    """A page of its own context at that viewport; fails the test on any JavaScript error but
    `known_errors` (a third-party front end's own, word for word)."""
    context = browser.new_context(viewport={"width": width, "height": height})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.extend([str(e)] if str(e) not in known_errors else []))
    pg.set_default_timeout(30_000)
    try:
        yield pg
    finally:
        context.close()
    assert errors == [], f"JavaScript errors: {errors}"


@pytest.fixture
def page(browser, server):
    with page_at(browser, 1280, 800) as pg:
        yield pg


def open_playground(page, server, path="/"):
    page.goto(server + path)
    page.wait_for_selector("body[data-ready='1']")
    return page
