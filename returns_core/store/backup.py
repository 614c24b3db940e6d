"""A full, restorable copy of the store for audit: `python -m returns_core backup --out DIR`.

DuckDB's EXPORT DATABASE writes the schema, a load script and one Parquet file per table;
`IMPORT DATABASE 'DIR'` restores it into an empty database. Tokens stay encrypted in the copy,
so it is useless without the key (which is never written into it).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb

from returns_core.store.db import Database, StoreError, io_reason, make_private, utcnow


@dataclass(frozen=True)
class BackupResult:
    """Where the copy is, and how many rows each table had."""

    path: Path
    row_counts: dict[str, int]


_EXISTS = "Backup folder {out} already exists and is not empty; choose a new folder."
_CANNOT_WRITE = ("Cannot write the backup to {out}: {reason}. Nothing was written; check the folder's space and "
                 "permissions, or choose another folder.")


def backup(db: Database, out_dir: str | Path) -> BackupResult:
    """Export every table to `out_dir` (which must not exist yet or be empty), with a manifest.

    The copy is written into a fresh temporary folder beside `out_dir` (a name nobody else has,
    owner-only) and renamed onto `out_dir` when complete. The rename replaces only a missing or
    empty folder, so nothing of the user's is ever deleted or overwritten, even if the target
    fills up while the copy is written.
    """
    out = Path(out_dir)
    if out.is_symlink():
        raise StoreError(f"Cannot write the backup to {out}: it is a link; choose a new folder.")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise StoreError(_EXISTS.format(out=out))
    if not out.parent.is_dir():
        raise StoreError(f"Cannot write the backup: the folder {out.parent} does not exist.")
    try:
        work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    except OSError as exc:
        raise StoreError(_CANNOT_WRITE.format(out=out, reason=exc.strerror or exc)) from None
    try:
        counts = _export(db, work)
        manifest = {"created_at": utcnow().isoformat() + "Z", "source": db.path.name, "row_counts": counts,
                    "restore": f"duckdb new.duckdb \"IMPORT DATABASE '{out.name}'\""}
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2))
        make_private(work)  # 0700 folder, 0600 files, whatever the umask: the copy holds customer data
        os.rename(work, out)  # atomic; fails rather than replace a folder that is not empty, or a file
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise StoreError(_EXISTS.format(out=out)) from None  # it appeared while the copy was written
        raise StoreError(_CANNOT_WRITE.format(out=out, reason=exc.strerror or exc)) from None
    except duckdb.IOException as exc:
        raise StoreError(_CANNOT_WRITE.format(out=out, reason=io_reason(exc))) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)  # our own temporary folder only; gone after the rename
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
