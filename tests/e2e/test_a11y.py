"""Accessibility, checked by axe-core in real Chromium: no serious or critical violation on the
default page, a graph-heavy example and an error, at a desktop and a phone width.

axe-core comes from tests/e2e/vendor (copied from the front-end build's node_modules, pinned by
SHA256SUMS), injected by Playwright into a context that bypasses the page's CSP, so the check
needs no network and the page's own policy stays as it is.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import open_playground

pytestmark = pytest.mark.integration

VENDOR = Path(__file__).resolve().parent / "vendor"
AXE = VENDOR / "axe.min.js"
VIEWPORTS = [(1280, 800), (420, 900)]
BLOCKING = ("serious", "critical")
ERROR_CODE = "import torch\nx = torch.ones(2, 3)\ny = x @ x   # (2, 3) @ (2, 3): shapes do not chain\n"
# The CodeMirror editor's own markup: its syntax colours and its scroller (frontend/editor.js
# builds them), checked on their own so a failure says whether ours or the editor's regressed.
EDITOR = ".cm-editor"

RUN_AXE = """async () => {
  const r = await axe.run(document, {resultTypes: ["violations"]});
  return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(" "), inEditor: !!document.querySelector(
      n.target.join(" "))?.closest(".cm-editor")}))}));
}"""


def test_the_axe_bundle_is_the_pinned_copy():
    digest, name = (VENDOR / "SHA256SUMS").read_text().split()
    assert name == AXE.name and hashlib.sha256(AXE.read_bytes()).hexdigest() == digest
    assert AXE.read_text()[:40].startswith("/*! axe v4.14.1")
    assert (VENDOR / "axe-core.LICENSE").read_text().startswith("Mozilla Public License")


@pytest.fixture(params=VIEWPORTS, ids=lambda v: f"{v[0]}x{v[1]}")
def a11y_page(request, browser, server):
    width, height = request.param
    context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        context.close()


def _open(page, server, case: str):
    if case == "graph":
        open_playground(page, server, "/?example=train-step")
        expect(page.locator(".graph-wrap svg")).to_be_visible()
    elif case == "error":
        open_playground(page, server)
        page.evaluate("code => { window.tp.setCode(code); window.tp.run(); }", ERROR_CODE)
        expect(page.locator("#status-card .err-title")).to_contain_text("RuntimeError")
    else:
        open_playground(page, server)
        expect(page.locator("#status-card")).to_be_visible()


def _blocking(page, *, in_editor: bool) -> list[str]:
    page.add_script_tag(path=str(AXE))
    found = []
    for v in page.evaluate(RUN_AXE):
        nodes = [n["target"] for n in v["nodes"] if n["inEditor"] == in_editor]
        if v["impact"] in BLOCKING and nodes:
            found.append(f"{v['impact']} {v['id']} ({v['help']}): {nodes[:5]}")
    return found


@pytest.mark.parametrize("case", ["default", "graph", "error"])
def test_no_serious_or_critical_violation(a11y_page, server, case):
    _open(a11y_page, server, case)
    assert _blocking(a11y_page, in_editor=False) == []


def test_the_editor_has_no_serious_or_critical_violation(a11y_page, server):
    _open(a11y_page, server, "graph")
    assert _blocking(a11y_page, in_editor=True) == []


def test_a_finished_run_is_announced_in_one_short_line(a11y_page, server):
    """The polite status region (outside the swapped panels) gets the run's summary; the panels
    are not a live region, which would read every table out at each run."""
    open_playground(a11y_page, server)
    a11y_page.evaluate("() => { window.tp.setCode('import torch\\nx = torch.ones(3)\\n'); window.tp.run(); }")
    summary = a11y_page.locator("#run-summary")
    expect(summary).to_contain_text("1 tensor")
    assert summary.inner_text().startswith("Ran in ")
    assert summary.get_attribute("aria-live") == "polite" and summary.get_attribute("role") == "status"
    assert a11y_page.locator("#panels").get_attribute("aria-live") is None
    a11y_page.evaluate("code => { window.tp.setCode(code); window.tp.run(); }", ERROR_CODE)
    expect(a11y_page.locator("#status-card .err-title")).to_be_visible()
    expect(summary).to_have_text("")  # no stale "Ran" left for a screen reader to find
