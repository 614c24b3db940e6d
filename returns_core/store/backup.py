"""A full, restorable copy of the store for audit: `python -m returns_core backup --out DIR`.

DuckDB's EXPORT DATABASE writes the schema, a load script and one Parquet file per table;
`IMPORT DATABASE 'DIR'` restores it into an empty database. Tokens stay encrypted in the copy,
so it is useless without the key (which is never written into it).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from returns_core.store.db import Database, StoreError, utcnow


@dataclass(frozen=True)
class BackupResult:
    """Where the copy is, and how many rows each table had."""

    path: Path
    row_counts: dict[str, int]


def backup(db: Database, out_dir: str | Path) -> BackupResult:
    """Export every table to `out_dir` (which must not exist yet or be empty), with a manifest."""
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise StoreError(f"Backup folder {out} already exists and is not empty; choose a new folder.")
    if not out.parent.exists():
        raise StoreError(f"Cannot write the backup: the folder {out.parent} does not exist.")
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    counts = _export(db, partial)
    manifest = {"created_at": utcnow().isoformat() + "Z", "source": db.path.name, "row_counts": counts,
                "restore": f"duckdb new.duckdb \"IMPORT DATABASE '{out.name}'\""}
    (partial / "manifest.json").write_text(json.dumps(manifest, indent=2))
    if out.exists():
        out.rmdir()
    partial.rename(out)
    return BackupResult(out, counts)


def _export(db: Database, folder: Path) -> dict[str, int]:
    """EXPORT DATABASE into `folder`; returns each table's row count at the moment of the copy."""
    with db.reader() as con:
        # one read transaction: the copy and the counts describe the same moment
        con.execute("BEGIN TRANSACTION")
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1").fetchall()]
        counts = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
        con.execute(f"EXPORT DATABASE '{_sql_text(folder)}' (FORMAT PARQUET)")
        con.execute("COMMIT")
    return counts


def _sql_text(path: Path) -> str:
    """A path as the text of a SQL literal (EXPORT DATABASE takes no parameters)."""
    return str(path).replace("'", "''")
