#!/usr/bin/env bash
# Install (into .venv) and run Returns Desk on its embedded defaults:
# the DuckDB file data/returns.duckdb and the "Demo Shop (sandbox)" account.
# server.py serves the app (app.py) and TikTok's webhook receiver, POST /webhooks/tiktok, on the
# same port; extra arguments go to `streamlit run` (e.g. --server.port 8600).
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
exec .venv/bin/python -m streamlit run server.py "$@"
