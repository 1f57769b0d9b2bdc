"""The README's Docker sections stay true to the code they document."""

from __future__ import annotations

import re

from app.settings import Settings
from tests.deploy import files

README = (files.ROOT / "README.md").read_text()


def test_every_setting_is_documented():
    missing = [f"TP_{n.upper()}" for n in Settings.model_fields if f"`TP_{n.upper()}`" not in README]
    assert not missing, f"add these to the README's settings table: {missing}"


def test_build_args_named_in_the_readme_exist():
    args = {a.split("=")[0] for a in files.args_of("ARG")}
    named = set(re.findall(r"--build-arg ([A-Z_]+)=", README))
    assert named and named <= args, named - args


def test_documented_image_defaults_match_the_dockerfile():
    env = files.env()
    for name in ("TP_MAX_CONCURRENT_RUNS", "TP_SPARE_WORKERS", "TP_QUEUE_MAX"):
        row = re.search(rf"\| `{name}` \| ([^|]+) \|", README)
        assert row and row.group(1).strip() == env[name], name
