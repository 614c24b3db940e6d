"""`backup` writes a restorable copy of the whole store, and never deletes or overwrites anything of the user's."""

import stat
from decimal import Decimal

import duckdb
import pytest

from returns_core.store import Database, StoreError, history
from returns_core.store import backup as backup_module
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


def test_backup_into_an_empty_folder_fills_it(store, tmp_path):
    target = tmp_path / "audit"
    target.mkdir()
    assert backup(store, target).row_counts["returns"] == 2
    assert (target / "manifest.json").exists() and (target / "returns.parquet").exists()


def test_backup_never_touches_a_users_partial_folder_and_leaves_no_temporary_folder(store, tmp_path):
    # issue 15, item 8: `backup --out X` used to delete an existing X.partial folder
    mine = tmp_path / "audit.partial"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    backup(store, tmp_path / "audit")
    assert (mine / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit", "audit.partial", "store.duckdb"]
    assert stat.S_IMODE((tmp_path / "audit").stat().st_mode) == 0o700  # customer data: the owner's only


def test_a_target_filled_while_the_copy_is_written_is_left_alone(store, tmp_path, monkeypatch):
    target = tmp_path / "audit"
    export = backup_module._export

    def someone_writes_there_meanwhile(db, folder):
        counts = export(db, folder)
        target.mkdir()
        (target / "theirs.txt").write_text("theirs")
        return counts

    monkeypatch.setattr(backup_module, "_export", someone_writes_there_meanwhile)
    with pytest.raises(StoreError, match="already exists and is not empty; choose a new folder"):
        backup(store, target)
    assert [p.name for p in target.iterdir()] == ["theirs.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_a_link_or_a_file_as_target_is_refused_and_left_alone(store, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "audit"
    link.symlink_to(real)
    with pytest.raises(StoreError, match=r"Cannot write the backup to .*audit: it is a link; choose a new folder"):
        backup(store, link)
    assert link.is_symlink() and not any(real.iterdir())
    a_file = tmp_path / "audit.txt"
    a_file.write_text("keep")
    with pytest.raises(StoreError, match="already exists and is not empty"):
        backup(store, a_file)
    assert a_file.read_text() == "keep"
