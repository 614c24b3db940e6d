"""The store deleted or replaced while the app runs (issue 15, item 5).

The app process sets the store up once and keeps running for days. When someone deletes the file
(to start over), the next page load sets a new store up and every page works. When another file
takes its place (a restored copy, perhaps from an older version), it is set up (upgraded, nothing
lost) on the first query that misses the old schema, which says so in one line; from then on every
page works. Never a CatalogException, never a traceback. Through AppTest on the real app.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app_ui.account_view import NO_ACCOUNT_TITLE
from returns_core.store.db import Database
from tests import ui_fixtures as ui
from tests.apptest import new_session, return_ids, texts
from tests.reliability import version_1_store

PAGES = ("app_pages/returns.py", "app_pages/accounts.py", "app_pages/sync_history.py", "app_pages/reasons.py")


@pytest.fixture
def running(app_db):
    """The app, open on a store with two shops and eight returns."""
    ui.seed_store(app_db)
    at = new_session()
    at.run()
    assert not at.exception, at.exception
    assert len(return_ids(at)) == 8
    return at


def remove_store(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)


REPLACED = "was replaced while this program ran; it is set up again now: try again (reload the page)."


def shown_replaced(at) -> int:
    """How many times the page said the store was replaced (Markdown escapes removed)."""
    return sum(REPLACED in str(e.value).replace("\\", "") for e in at.error)


def visit_every_page(at) -> int:
    """Open each page; none fails. Returns how many said the store was replaced."""
    said = 0
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, f"{page}: {at.exception}"
        assert "CatalogException" not in texts(at) and "does not exist" not in texts(at)
        said += shown_replaced(at)
    return said


def test_a_store_deleted_while_the_app_runs_is_set_up_again(running, app_db):
    remove_store(app_db.path)
    running.run()  # the next page load
    assert not running.exception, running.exception
    assert NO_ACCOUNT_TITLE in [e.value for e in running.error], "the empty store's own notice"
    assert visit_every_page(running) == 0
    fresh = Database(app_db.path)
    assert not fresh.upgrade_pending() and fresh.value("SELECT count(*) FROM sync_runs") == 0


def test_a_store_replaced_by_an_older_copy_is_upgraded_with_nothing_lost(running, app_db):
    remove_store(app_db.path)
    version_1_store(app_db.path, ui.ALPHA)  # a copy from the first version: R1 (two items) and R2
    running.run()
    assert not running.exception, running.exception
    # the first query that misses the old schema upgrades the store and says so, once; then all is well
    assert shown_replaced(running) + visit_every_page(running) == 1
    assert visit_every_page(running) == 0
    upgraded = Database(app_db.path)
    assert not upgraded.upgrade_pending()
    assert upgraded.rows("SELECT return_id, len(lines) FROM returns ORDER BY 1") == [("R1", 2), ("R2", None)]
