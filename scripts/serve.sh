#!/usr/bin/env bash
# Install what is missing, then serve the playground on http://127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/uvicorn app.main:app --host "${TP_HOST:-127.0.0.1}" --port "${TP_PORT:-8000}"
