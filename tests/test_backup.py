"""`backup` writes a restorable copy of the whole store, and refuses to overwrite one."""

from decimal import Decimal

import duckdb
import pytest

from returns_core.store import Database, StoreError, history
from returns_core.store.backup import backup


@pytest.fixture
def store(tmp_path):
    db = Database(tmp_path / "store.duckdb")
    with db.writer() as con:
        con.execute(
            "INSERT INTO returns (shop_id, return_id, status, refund_total, refund_currency, first_seen_at, "
            "last_synced_at) VALUES ('s1', 'r1', 'Accepted', 12.34, 'USD', now(), now()), "
            "('s1', 'r2', 'Refund', 5.00, 'USD', now(), now())"
        )
        history.append(con, [history.entry("s1", "r1", "ana", "note", note="checked the box")])
    return db


def test_backup_restores_every_row(store, tmp_path):
    result = backup(store, tmp_path / "audit")
    assert result.row_counts["returns"] == 2
    assert result.row_counts["history"] == 1
    restored = duckdb.connect(str(tmp_path / "restored.duckdb"))
    restored.execute(f"IMPORT DATABASE '{tmp_path / 'audit'}'")
    assert restored.execute("SELECT return_id, refund_total FROM returns ORDER BY 1").fetchall() == [
        ("r1", Decimal("12.3400")), ("r2", Decimal("5.0000"))]
    assert restored.execute("SELECT note FROM history").fetchall() == [("checked the box",)]
    assert (tmp_path / "audit" / "manifest.json").exists()


def test_backup_refuses_a_non_empty_folder_and_changes_nothing(store, tmp_path):
    target = tmp_path / "audit"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(StoreError, match="not empty"):
        backup(store, target)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
