"""The image check retries buildah only on its transient re-exec seal error (CI failed once on
"Close_Fd sealing memfd copy: Device or resource busy" before the build's pip step ran)."""

from __future__ import annotations

import subprocess

from tests.deploy import files

HELPER = files.ROOT / "scripts" / "retry-transient.sh"
SEAL_ERROR = "Close_Fd sealing memfd copy: Device or resource busy"


def run_fake(tmp_path, failures: list[str], attempts: int = 3):
    """retry_transient over a fake command that prints and fails with each of `failures` in turn,
    then succeeds; returns (status, how many times the command ran, the log, stderr)."""
    script = tmp_path / "fake.sh"
    script.write_text(
        'n=$(($(cat "$COUNT" 2>/dev/null || echo 0) + 1)); echo "$n" > "$COUNT"\n'
        'msg=$(sed -n "${n}p" "$FAILS")\n'
        '[ -n "$msg" ] && { echo "$msg" >&2; exit 7; }\n'
        'echo built\n'
    )
    (tmp_path / "fails").write_text("".join(f"{m}\n" for m in failures))
    log, count = tmp_path / "build.log", tmp_path / "count"
    proc = subprocess.run(
        [
            "bash",
            "-c",
            f'set -euo pipefail; source "{HELPER}"; retry_transient {attempts} "$LOG" bash "$FAKE"',
        ],
        env={
            "PATH": "/usr/bin:/bin",
            "COUNT": str(count),
            "FAILS": str(tmp_path / "fails"),
            "LOG": str(log),
            "FAKE": str(script),
        },
        capture_output=True,
        text=True,
        timeout=30,
    )
    return proc.returncode, int(count.read_text()), log.read_text(), proc.stderr


def test_success_runs_once(tmp_path):
    assert run_fake(tmp_path, [])[:3] == (0, 1, "built\n")


def test_the_seal_error_is_retried_until_the_build_passes(tmp_path):
    rc, runs, log, err = run_fake(tmp_path, [SEAL_ERROR, SEAL_ERROR])
    assert (rc, runs, log) == (0, 3, "built\n")
    assert err.count("transient re-exec seal error") == 2


def test_other_failures_are_not_retried(tmp_path):
    rc, runs, log, _ = run_fake(tmp_path, ["E: Unable to locate package graphviz"])
    assert (rc, runs) == (7, 1) and "graphviz" in log


def test_the_seal_error_on_every_attempt_fails_with_the_commands_status(tmp_path):
    rc, runs, log, _ = run_fake(tmp_path, [SEAL_ERROR] * 3)
    assert (rc, runs) == (7, 3) and SEAL_ERROR in log


def test_a_seal_error_then_a_real_failure_stops_there(tmp_path):
    rc, runs, log, _ = run_fake(tmp_path, [SEAL_ERROR, "pip: no matching distribution"])
    assert (rc, runs) == (7, 2) and "pip" in log


def test_the_image_check_builds_through_it():
    text = (files.ROOT / "scripts" / "image-check.sh").read_text()
    assert "source scripts/retry-transient.sh" in text
    assert "retry_transient 3 \"$LOG_DIR/build.log\" \\\n       buildah bud" in text
