"""Files that hold customer data are readable by their owner only, whatever the umask (issue 15, item 14).

The store, exports (CSV, Excel, Parquet) and backups are created 0600 (folders 0700), like the key
file, also under the usual umask 022 that would make them 0644: from the command line, and from
the library code the app uses.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from returns_core.filters import ReturnFilters
from returns_core.store.backup import backup
from returns_core.store.db import Database
from returns_core.store.returns import export_returns
from tests import ui_fixtures as ui
from tests.conftest import PYTHON, ROOT

KEY = Fernet.generate_key().decode()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_private_folder(folder: Path) -> None:
    assert mode(folder) == 0o700, oct(mode(folder))
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files and {p.name: oct(mode(p)) for p in files} == {p.name: oct(0o600) for p in files}


@contextmanager
def usual_umask():
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    db = Database(tmp_path_factory.mktemp("template") / "returns.duckdb", key=KEY)
    ui.seed_store(db)
    db.checkpoint()
    return db.path


def test_the_command_line_writes_exports_and_backups_for_their_owner_only(template, tmp_path, cli_env):
    store = tmp_path / "returns.duckdb"
    shutil.copyfile(template, store)
    env = {**cli_env, "RETURNS_DESK_KEY": KEY}

    def run(*args: str) -> None:
        done = subprocess.run([PYTHON, "-m", "returns_core", "--db", str(store), *args], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=60, preexec_fn=lambda: os.umask(0o022))
        assert done.returncode == 0, done.stderr

    for name in ("all.csv", "all.xlsx", "all.parquet"):
        run("export", "--out", str(tmp_path / name))
        assert mode(tmp_path / name) == 0o600, name
    run("backup", "--out", str(tmp_path / "audit"))
    assert_private_folder(tmp_path / "audit")


def test_the_library_creates_the_store_exports_and_backups_for_their_owner_only(template, tmp_path):
    with usual_umask():
        fresh = Database(tmp_path / "new" / "returns.duckdb", key=KEY)
        fresh.migrate()
        assert mode(fresh.path) == 0o600
        store = Database(tmp_path / "copy.duckdb", key=KEY)
        shutil.copyfile(template, store.path)
        for name in ("all.csv", "all.xlsx", "all.parquet"):
            assert export_returns(store, ReturnFilters(), tmp_path / name) == 8
            assert mode(tmp_path / name) == 0o600, name
        backup(store, tmp_path / "audit")
    assert_private_folder(tmp_path / "audit")
