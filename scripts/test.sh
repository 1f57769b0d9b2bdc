#!/usr/bin/env bash
# Install what is missing (test extras included), then lint, type-check and run the whole test
# suite. Every check runs even when an earlier one failed, so one pass reports all of them; the
# script fails if any did. Arguments go to pytest only (the checks always cover the whole tree).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
status=0
failed=()
check() {
    local what=$1
    shift
    echo "== $what: $*"
    if ! "$@"; then
        status=1
        failed+=("$what")
    fi
}
check "ruff check" .venv/bin/ruff check .
check "ruff format" .venv/bin/ruff format --check .
check "mypy" .venv/bin/mypy
check "pytest" .venv/bin/python -m pytest "$@"
if [ "$status" -ne 0 ]; then
    echo "test.sh: failed: ${failed[*]}" >&2
fi
exit "$status"
