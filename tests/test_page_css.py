"""app.page_css: the one reader of the page's stylesheet for the panels' copies."""

from __future__ import annotations

from app import page_css


def test_rules_inside_at_blocks_are_skipped_and_bodies_kept():
    css = ":root { --ink: #111; } a { color: var(--ink); } @media (max-width: 9px) { b { x: y; } } c {}"
    assert list(page_css.top_level_rules(css)) == [
        (":root", " --ink: #111; "),
        ("a", " color: var(--ink); "),
        ("c", ""),
    ]


def test_the_pages_colours_resolve_and_an_unknown_one_falls_back():
    ink = page_css.variables()["--ink"]
    assert ink.startswith("#") and page_css.resolved("1px solid var(--ink) !important") == f"1px solid {ink}"
    assert page_css.resolved("var(--no-such-colour)", missing="inherit") == "inherit"


def test_comments_are_gone_from_the_source():
    assert "/*" not in page_css.source() and ".stride-svg" in page_css.source()
