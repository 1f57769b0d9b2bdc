"""The allow-list SVG sanitizer: hostile SVG loses everything active, and dot's own drawings of
every lesson's graph come through with the same elements, attributes and texts."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from app.web import graph_view, svg_sanitize
from app.web.svg_sanitize import ALLOWED, SvgRefused, sanitize

ROOT = Path(__file__).resolve().parents[2]
XLINK = 'xmlns:xlink="http://www.w3.org/1999/xlink"'

HOSTILE = {
    "script": "<svg><script>alert(1)</script><g/></svg>",
    "svg-prefixed script": '<svg xmlns:svg="http://www.w3.org/2000/svg"><svg:script>alert(1)</svg:script></svg>',
    "onload": '<svg onload="alert(1)"><g onclick="alert(2)" onmouseover="alert(3)"/></svg>',
    "javascript href": f'<svg {XLINK}><a xlink:href="javascript:alert(1)"><text>t</text></a></svg>',
    "entity-encoded href": '<svg><a href="&#106;avascript:alert(1)"><text>t</text></a></svg>',
    "case and whitespace": '<svg><a href=" JaVaScRiPt:alert(1)"><text>t</text></a></svg>',
    "tab inside scheme": '<svg><a href="java&#x09;script:alert(1)"><text>t</text></a></svg>',
    "href on a kept element": '<svg><g href="javascript:alert(1)"><text href="#x">t</text></g></svg>',
    "foreignObject": (
        '<svg><foreignObject><body xmlns="http://www.w3.org/1999/xhtml">'
        '<img src="x" onerror="alert(1)"/></body></foreignObject></svg>'
    ),
    "style element": "<svg><style>@import url(javascript:alert(1));</style></svg>",
    "style attribute": '<svg><g style="background:url(javascript:alert(1));x:expression(alert(1))"/></svg>',
    "url() paint": '<svg><path fill="url(javascript:alert(1))" stroke="url(#x)" d="M0,0"/></svg>',
    "use of external ref": f'<svg {XLINK}><use xlink:href="http://evil.example/x.svg#a"/></svg>',
    "iframe": '<svg><iframe src="javascript:alert(1)"/></svg>',
    "animate href": (
        '<svg><a><animate attributeName="href" to="javascript:alert(1)"/><text>t</text></a></svg>'
    ),
    "set onload": '<svg><set attributeName="onload" to="alert(1)"/></svg>',
    "image onerror": '<svg><image href="x" onerror="alert(1)"/></svg>',
    "breakout through title": "<svg><title>&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;</title></svg>",
    "breakout through CDATA": "<svg><text><![CDATA[</text><img src=x onerror=alert(1)>]]></text></svg>",
    "html breakout tag": '<svg><p><img src="x" onerror="alert(1)"/></p></svg>',
    "transform smuggling": '<svg><g transform="translate(1 2) url(javascript:alert(1))"/></svg>',
    "clobbering id": '<svg><g id="panels" class="node gnode t1 x&quot;y onclick=alert(1)"/></svg>',
    "attribute quote": '<svg><text x="1&quot; onmouseover=&quot;alert(1)">t</text></svg>',
    "xml-stylesheet": '<?xml-stylesheet href="javascript:alert(1)"?><svg><g/></svg>',
}


def _walk(svg: str):
    """(tag, attributes) of every element of the sanitizer's output, which must be XML."""
    for el in ET.fromstring(svg).iter():
        yield el.tag.rsplit("}", 1)[-1], el.attrib


def _assert_inert(svg: str) -> None:
    for tag, attrs in _walk(svg):
        assert tag in ALLOWED, tag
        for name, value in attrs.items():
            assert name in ALLOWED[tag] or (tag == "svg" and name in graph_view.ROOT_ATTRS), (tag, name)
            assert "javascript" not in value.lower() and "url(" not in value and "expression" not in value
    assert "<script" not in svg and "<img" not in svg and "<style" not in svg


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_svg_keeps_nothing_active(case):
    out = sanitize(HOSTILE[case])
    _assert_inert(out)
    assert out.startswith("<svg") and out.endswith("</svg>")


def test_unwrapped_link_keeps_its_text_and_loses_its_target():
    out = sanitize(HOSTILE["javascript href"])
    assert [t for t, _ in _walk(out)] == ["svg", "text"]
    assert ET.fromstring(out)[0].text == "t"


def test_text_is_reescaped_not_dropped():
    title = ET.fromstring(sanitize(HOSTILE["breakout through title"]))[0]
    assert title.text == "</title><script>alert(1)</script>"
    text = ET.fromstring(sanitize(HOSTILE["breakout through CDATA"]))[0]
    assert text.text == "</text><img src=x onerror=alert(1)>"


def test_only_well_formed_class_tokens_and_dot_ids_survive():
    g = ET.fromstring(sanitize(HOSTILE["clobbering id"]))[0]
    assert "id" not in g.attrib, "a page id from the payload could clobber the page's own"
    assert g.attrib["class"] == "node gnode t1"
    kept = ET.fromstring(sanitize('<svg><g id="node12" class="node"/></svg>'))[0]
    assert kept.attrib == {"id": "node12", "class": "node"}


def test_root_attributes_are_added_escaped():
    out = sanitize('<svg width="10pt"><g/></svg>', {"class": "graph-svg", "aria-label": 'a "b" <c>'})
    root = ET.fromstring(out)
    assert root.attrib["aria-label"] == 'a "b" <c>' and root.attrib["class"] == "graph-svg"
    assert root.attrib["width"] == "10pt"
    with pytest.raises(ValueError):
        sanitize("<svg/>", {"onload": "x", "a b": "y"})


@pytest.mark.parametrize(
    "svg",
    [
        '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd"><svg/>',
        '<!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        "<svg><text>&b;</text></svg>",
        '<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg><text>&x;</text></svg>',
        '<svg><text>&undefined;</text></svg>',
        "<svg><g></svg>",
        "not xml at all",
        "",
        "<html><script>alert(1)</script></html>",
        "<svg><text>\ud800</text></svg>",
    ],
    ids=[
        "doctype",
        "billion laughs",
        "external entity",
        "undefined entity",
        "unclosed",
        "text",
        "empty",
        "root not svg",
        "lone surrogate",
    ],
)
def test_refused_inputs(svg):
    with pytest.raises(SvgRefused):
        sanitize(svg)


def test_deep_nesting_is_refused_without_recursion():
    with pytest.raises(SvgRefused, match="levels"):
        sanitize("<svg>" + "<g>" * 100_000 + "</g>" * 100_000 + "</svg>")


def test_too_many_elements_are_refused():
    with pytest.raises(SvgRefused, match="elements"):
        sanitize("<svg>" + "<g/>" * (svg_sanitize.ELEMENTS_MAX + 1) + "</svg>")


def test_huge_input_is_refused_before_parsing():
    huge = "<svg><text>" + "a" * svg_sanitize.SVG_BYTES_MAX + "</text></svg>"
    t0 = time.process_time()
    with pytest.raises(SvgRefused, match="larger"):
        sanitize(huge)
    assert time.process_time() - t0 < 0.05, "the size check comes before any parsing"


def test_elements_at_the_cap_are_linear_work():
    """At ELEMENTS_MAX elements, all dropped or kept, the pass stays well inside a CPU budget."""
    svg = "<svg>" + '<g class="node"><title>n1</title></g>' * (svg_sanitize.ELEMENTS_MAX // 2 - 1) + "</svg>"
    t0 = time.process_time()
    out = sanitize(svg)
    assert time.process_time() - t0 < 1.0
    assert out.count("<title>n1</title>") == svg_sanitize.ELEMENTS_MAX // 2 - 1


# Each lesson runs in its own interpreter: lessons flip torch's global modes (set_grad_enabled).
_LESSON_DOTS = r"""
import contextlib, io, json, sys
from app.examples import EXAMPLES
from app.inspector import snapshot
from app.schemas import RunResponse
from app.web import graph_view
out = {}
for ex in EXAMPLES:
    ns = {"__name__": "__main__"}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            exec(compile(ex.code, ex.id, "exec"), ns)
        except Exception:
            pass
    shown = {k: v for k, v in ns.items() if not k.startswith("__")}
    resp = RunResponse.model_validate(snapshot(shown) | {"ok": True})
    index = {t.name: i for i, t in enumerate(resp.tensors)}
    if resp.graph.nodes:
        out[ex.id] = graph_view.to_dot(resp.graph, {t.name: t for t in resp.tensors}, index).source
json.dump(out, sys.stdout)
"""


@pytest.fixture(scope="module")
def lesson_dots() -> dict[str, str]:
    proc = subprocess.run(
        [sys.executable, "-c", _LESSON_DOTS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(proc.stdout)


def _meaning(svg: str, skip_root: bool) -> list[tuple]:
    """Every element in document order: its tag, attributes and stripped text."""
    els = list(ET.fromstring(svg).iter())
    return [
        (el.tag.rsplit("}", 1)[-1], {} if skip_root and i == 0 else dict(el.attrib), (el.text or "").strip())
        for i, el in enumerate(els)
    ]


def test_every_lessons_drawing_passes_unchanged_in_meaning(lesson_dots):
    assert len(lesson_dots) >= 5, f"only {sorted(lesson_dots)} have graphs"
    for lesson, source in lesson_dots.items():
        raw = subprocess.run(
            ["dot", "-Tsvg"], input=source.encode(), capture_output=True, check=True, timeout=10
        ).stdout.decode()
        drawing = graph_view.sanitized(raw)
        assert drawing.problem == "", (lesson, drawing.problem)
        before, after = _meaning(raw, True), _meaning(drawing.svg, True)
        assert after == before, lesson
        assert {"gnode"} <= {c for _, a, _ in after for c in a.get("class", "").split()}, lesson
        root = ET.fromstring(drawing.svg).attrib
        assert root["class"] == "graph-svg" and root["viewBox"] == ET.fromstring(raw).attrib["viewBox"]
