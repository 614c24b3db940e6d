#!/usr/bin/env bash
# Install (into .venv) and run Returns Desk on its embedded defaults:
# the DuckDB file data/returns.duckdb and the "Demo Shop (sandbox)" account.
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
exec .venv/bin/python -m streamlit run app.py "$@"
