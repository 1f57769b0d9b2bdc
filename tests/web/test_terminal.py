"""The output panel shows what a terminal would: a progress bar's redraws collapse to the last one."""

from __future__ import annotations

import io

import pytest
from tqdm import tqdm

from app.examples import by_id
from app.web.terminal import SHOWN_CHARS, terminal_text


def _tqdm_output(steps: int, **kwargs) -> str:
    out = io.StringIO()
    for _ in tqdm(range(steps), file=out, mininterval=0, ncols=60, **kwargs):
        pass
    return out.getvalue()


def test_a_tqdm_bar_shows_only_its_last_redraw():
    raw = _tqdm_output(10, desc="epoch")
    assert raw.count("\r") >= 10  # tqdm really redraws with carriage returns
    shown = terminal_text(raw)
    assert "\r" not in shown
    assert shown.splitlines() == [raw.rstrip("\n").rsplit("\r", 1)[1]]
    assert shown.startswith("epoch: 100%|") and "10/10" in shown and "| 0/10" not in shown


def test_prints_between_redraws_keep_their_lines():
    """tqdm's bar and the loop's own prints share a stream (here one StringIO, as stderr and
    stdout are each one stream in the panel): each printed line keeps the bar drawn before it."""
    out = io.StringIO()
    for i in tqdm(range(3), file=out, mininterval=0, ncols=50):
        print(f"loss {i}", file=out)
    lines = terminal_text(out.getvalue()).splitlines()
    assert [line.endswith(f"loss {i}") for i, line in enumerate(lines[:3])] == [True] * 3
    assert "3/3" in lines[3] and len(lines) == 4


def test_each_carriage_return_returns_to_the_start_of_the_line():
    assert terminal_text("10%\r50%\r100%\ndone\n") == "100%\ndone\n"
    assert terminal_text("a\rb\rc") == "c"


def test_a_trailing_carriage_return_or_crlf_erases_nothing():
    assert terminal_text("working 50%\r") == "working 50%"
    assert terminal_text("one\r\ntwo\r\n") == "one\ntwo\n"
    assert terminal_text("\r\r\r") == ""


def test_text_without_carriage_returns_is_unchanged():
    text = "line 1\n  indented\n\n\ttab\n"
    assert terminal_text(text) == text


def test_only_the_shown_part_is_read():
    text = ("progress\r" * 1000 + "done\n") * 20_000
    shown = terminal_text(text)
    lines = shown.split("\n")
    assert len(shown) <= SHOWN_CHARS and set(lines[:-1]) == {"done"}  # the last: cut mid-line
    assert "progress".startswith(lines[-1]) or lines[-1] == "done"
    assert terminal_text("abcdef", limit=3) == "abc"


@pytest.mark.integration
def test_the_tqdm_lessons_panel_shows_the_finished_bar_once():
    """Through the real sandbox and page: the raw stderr keeps every redraw, the panel only the
    last (what the terminal shows)."""
    from html import unescape

    from tests.web.conftest import make_client

    lesson = by_id("tqdm-loader")
    assert lesson is not None
    with make_client() as client:
        raw = client.post("/api/run", json={"code": lesson.code}).json()["stderr"]["text"]
        page = client.get("/", params={"example": "tqdm-loader"}).text
    assert raw.count("\r") >= 2 and "0/4" in raw
    shown = unescape(page.split('aria-label="stderr">', 1)[1].split("</pre>", 1)[0])
    assert "\r" not in shown and "| 0/4" not in shown
    assert shown.count("epoch 1: 100%") == 1 and "4/4" in shown
