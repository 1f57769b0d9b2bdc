import pytest

from app.web.panel_names import DEFAULT_EMBED_PANELS, PANELS, card_id, parse_panels


def test_panels_come_back_in_the_pages_order_whatever_the_links_order():
    assert parse_panels("graph, tensors,graph") == ("tensors", "graph")


def test_blank_or_missing_means_the_default_set():
    assert parse_panels(None) == parse_panels("  ") == DEFAULT_EMBED_PANELS


def test_an_unknown_panel_is_named_in_the_error():
    with pytest.raises(ValueError, match="'bogus'.*the panels are tensors"):
        parse_panels("tensors,bogus")


def test_every_panel_is_a_card_of_the_page():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "templates"
    html = "".join(p.read_text() for p in root.glob("_*.html"))
    assert all(f'id="{card_id(p)}"' in html for p in PANELS)
