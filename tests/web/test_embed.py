"""`/embed` (app/web/embed.py): the one page other sites may frame, with its frame-ancestors from
TP_EMBED_FRAME_ANCESTORS while every other answer keeps TP_FRAME_ANCESTORS; no page chrome; a
link that names no panel, an unknown one or an unknown lesson says so in the frame."""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

import pytest
from pydantic import ValidationError

from app.examples import EXAMPLES
from app.settings import Settings
from app.web.panel_names import DEFAULT_EMBED_PANELS, PANELS
from tests.forged_kit import empty_run_app
from tests.webserver import client_for


@pytest.fixture(scope="module")
def client():
    with client_for(empty_run_app()) as c:
        yield c


def _frame_ancestors(response) -> list[str]:
    policy = response.headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
    return directives["frame-ancestors"]


class _Tags(HTMLParser):
    """Every start tag's name and attributes, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(html: str) -> list[tuple[str, dict]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def _by_id(html: str, id_: str) -> dict:
    return next(attrs for _, attrs in _tags(html) if attrs.get("id") == id_)


def test_the_embed_may_be_framed_by_any_site_by_default_and_the_rest_by_none(client):
    embed = client.get("/embed?panels=tensors")
    assert embed.status_code == 200 and _frame_ancestors(embed) == ["*"]
    assert "x-frame-options" not in embed.headers  # it cannot say "any site"
    for r in (
        client.get("/"),
        client.get("/api/health"),
        client.post("/fragments/run", data={"code": "x = 1"}),
    ):
        assert _frame_ancestors(r) == ["'none'"], r.url
    # Old browsers without frame-ancestors: the HTML routes say DENY too, the embed does not.
    assert client.get("/").headers["x-frame-options"] == "DENY"
    assert client.post("/fragments/run", data={"code": "x = 1"}).headers["x-frame-options"] == "DENY"


def test_the_embeds_policy_runs_only_our_own_script_files_like_the_page(client):
    r = client.get("/embed")
    policy = r.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-eval" not in policy
    for tag, attrs in _tags(r.text):
        assert not any(name.startswith("on") for name in attrs)
        if tag == "script":
            assert attrs["src"].startswith("/static/")
    assert re.findall(r"<script>", r.text) == []


def test_embed_frame_ancestors_comes_from_its_setting_and_leaves_the_pages_alone():
    app = empty_run_app(embed_frame_ancestors="https://course.example.edu  'self'", frame_ancestors="'self'")
    with client_for(app) as c:
        assert _frame_ancestors(c.get("/embed")) == ["https://course.example.edu", "'self'"]
        page = c.get("/")
        assert _frame_ancestors(page) == ["'self'"] and page.headers["x-frame-options"] == "SAMEORIGIN"


def test_a_frame_ancestors_list_of_hosts_sends_no_x_frame_options():
    """X-Frame-Options cannot name other hosts: DENY there would refuse the sites the setting allows."""
    with client_for(empty_run_app(frame_ancestors="https://docs.example.org")) as c:
        assert "x-frame-options" not in c.get("/").headers


@pytest.mark.parametrize("value", ["", "* ; script-src *", "'none' *", "https://a.org,*", "*\r\nX: 1"])
def test_an_embed_frame_ancestors_setting_that_is_not_a_source_list_is_refused(value):
    with pytest.raises(ValidationError):
        Settings(embed_frame_ancestors=value)


def test_the_default_embed_setting_is_any_site_and_narrowing_it_is_accepted():
    assert Settings().embed_frame_ancestors == "*"
    assert (
        Settings(embed_frame_ancestors="https://*.example.edu").embed_frame_ancestors
        == "https://*.example.edu"
    )


def test_the_embed_has_no_page_chrome_and_its_link_opens_a_new_tab(client):
    html = client.get("/embed?panels=graph,tensors").text
    ids = {attrs.get("id") for _, attrs in _tags(html)}
    assert not ids & {"examples", "share", "embed-btn", "run-btn", "live", "timeline", "draft-bar"}
    assert "topbar" not in html and "<header" not in html
    main = _by_id(html, "embed")
    assert main["data-panels"] == "tensors,graph"  # the page's order, not the link's
    assert main["data-edit"] == "" and "embed-editor" not in ids and "embed-pre" in ids
    link = _by_id(html, "embed-open")
    assert (link["target"], link["rel"], link["href"]) == ("_blank", "noopener", "/")


def test_no_panels_asked_for_is_the_default_set(client):
    html = client.get("/embed").text
    assert _by_id(html, "embed")["data-panels"] == ",".join(DEFAULT_EMBED_PANELS)


def test_edit_1_brings_the_editor_and_its_script(client):
    html = client.get("/embed?panels=tensors&edit=1").text
    assert _by_id(html, "embed")["data-edit"] == "1" and _by_id(html, "embed-editor")
    assert "vendor/codemirror.js" in html and 'id="embed-pre"' not in html


@pytest.mark.parametrize(
    "query, said",
    [
        ("panels=tensors,shapes", "not a panel: 'shapes'"),
        ("panels=,", "names no panel"),
        ("panels=%3Cscript%3E", "not a panel: '<script>'"),
    ],
)
def test_a_link_with_bad_panels_says_what_is_wrong_in_the_frame(client, query, said):
    r = client.get("/embed?" + query)
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
    shown = unescape(r.text)
    assert "This embed's link is wrong" in shown and said in shown
    assert ", ".join(PANELS) in shown  # the panels it could have asked for
    assert 'id="panels"' not in r.text and "<script>" not in r.text  # escaped, not markup
    assert _frame_ancestors(r) == ["*"]  # shown in the host's frame, not refused


def test_an_example_link_carries_the_lessons_code_and_opens_the_lesson(client):
    lesson = next(e for e in EXAMPLES if "<" in e.code or "'" in e.code or '"' in e.code)
    html = client.get(f"/embed?panels=tensors&example={lesson.id}").text
    assert _by_id(html, "embed")["data-example"] == lesson.id
    assert _by_id(html, "embed-open")["href"] == f"/?example={lesson.id}"
    shown = re.search(r'<pre id="embed-example" hidden>(.*?)</pre>', html, re.S)
    assert shown is not None and unescape(shown.group(1)) == lesson.code


def test_an_unknown_example_is_said_so_in_the_frame(client):
    r = client.get("/embed?example=no-such-lesson&panels=tensors")
    assert r.status_code == 404 and "There is no example called “no-such-lesson”" in r.text


def test_the_frame_id_goes_only_into_an_attribute_escaped_and_capped(client):
    html = client.get('/embed?id="><b>x' + "y" * 200).text
    assert "<b>" not in html
    assert _by_id(html, "embed")["data-frame-id"] == '"><b>x' + "y" * 58


def test_the_pages_embed_dialog_offers_every_panel_with_the_default_set_checked(client):
    boxes = [a for t, a in _tags(client.get("/").text) if t == "input" and a.get("name") == "panel"]
    assert [b["value"] for b in boxes] == list(PANELS)
    assert [b["value"] for b in boxes if "checked" in b] == list(DEFAULT_EMBED_PANELS)
