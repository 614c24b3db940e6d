"""Text that goes into a spreadsheet (CSV or Excel) must never run there.

Reason texts, notes, names and IDs come from buyers, TikTok and our users. A cell that starts
with `=`, `+`, `-`, `@`, a tab or a carriage return is read by Excel, LibreOffice and Google
Sheets as a formula (`=HYPERLINK(...)`, `=cmd|' /C calc'!A0`), so such text gets a leading
single quote: the OWASP rule for CSV injection. Control characters (NUL and the other C0 codes
but tab, newline and carriage return) are dropped: no spreadsheet can hold them, and a NUL ends
a string early in many readers.

Only text is touched: numbers (money), times and booleans stay what they are. Parquet is a data
format, not a spreadsheet, and keeps the raw text.

`safe_cell` is the rule; `safe_cell_sql` its twin in DuckDB SQL for exports written by COPY;
`safe_frame` applies it to a pandas frame.
"""

from __future__ import annotations

import re

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# the same two patterns for RE2 (DuckDB): a SQL string literal keeps the backslashes as they are
_CONTROL_SQL = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"
_FORMULA_START_SQL = r"^[=+\-@\t\r]"


def safe_cell(value: object) -> object:
    """A value as a spreadsheet may hold it: text neutralised, anything else unchanged."""
    if not isinstance(value, str):
        return value
    text = _CONTROL.sub("", value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def safe_cell_sql(expr: str) -> str:
    """`safe_cell` for a VARCHAR expression in DuckDB SQL (NULL stays NULL)."""
    clean = f"regexp_replace({expr}, '{_CONTROL_SQL}', '', 'g')"
    return f"CASE WHEN regexp_matches({clean}, '{_FORMULA_START_SQL}') THEN '''' || {clean} ELSE {clean} END"


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of the frame with every text cell neutralised (for CSVs written by pandas)."""
    out = frame.copy()
    for name in out.columns:
        if out[name].dtype == object or pd.api.types.is_string_dtype(out[name]):
            out[name] = out[name].map(safe_cell)
    return out
