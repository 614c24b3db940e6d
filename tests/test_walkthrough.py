"""One return from Requested to Refund, done entirely in the app (AppTest on app.py), against the
sandbox over real HTTP: sync, approve the return, the buyer ships, accept the package, sign off,
TikTok pays out, sync again. Every step lands in the return's history under the user's name."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from returns_core import domain, review
from returns_core.connect import add_accounts_with_tokens
from returns_core.filters import ReturnFilters
from returns_core.store import returns
from returns_core.store.db import Database
from returns_core.tiktok.client import TokenSet
from returns_core.tiktok.sandbox import SANDBOX_APP_KEY, SANDBOX_APP_SECRET
from tests.apptest import open_app, run_until, sidebar_text

HOUR = 3600


@pytest.fixture
def shop_db(tmp_path, monkeypatch, sandbox, sandbox_server) -> Database:
    path = tmp_path / "app.duckdb"
    monkeypatch.setenv("RETURNS_DB", str(path))
    monkeypatch.setenv("RETURNS_DEMO", "0")
    db = Database(path, lock_timeout=10)
    tokens = TokenSet.from_data(sandbox.issue_tokens())
    add_accounts_with_tokens(db, "Shop", SANDBOX_APP_KEY, SANDBOX_APP_SECRET, tokens.access_token,
                             tokens.refresh_token, api_base=sandbox_server.url, auth_base=sandbox_server.url,
                             tokens=tokens)
    return db


def app(page: str | None = None, **query: str) -> AppTest:
    """app.py as Mia (the name in the sidebar), on `page` with these query parameters."""
    return open_app(page, actor="Mia", **query)


def press(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click().run()
    assert not at.exception, at.exception
    return at


def decide(shop_id: str, return_id: str, decision: str) -> None:
    """On the detail page: pick the decision, review exactly what will be sent, send it."""
    at = app("app_pages/detail.py", id=return_id, shop=shop_id)
    key = f"wf_act_{shop_id}_{return_id}"
    at.radio(key=f"{key}_decision").set_value(decision).run()
    press(at, "Review the decision")
    assert any(f"/returns/{return_id}/approve" in j.value for j in at.json)
    press(at, "Send to TikTok")


def finished_syncs(db: Database) -> int:
    with db.reader() as con:
        return con.execute("SELECT count(*) FROM sync_runs WHERE state = 'ok'").fetchone()[0]


def sync_in_sidebar(db: Database) -> None:
    before = finished_syncs(db)
    at = app()
    at.sidebar.button(key="sidebar_sync").click().run()
    run_until(at, lambda a: finished_syncs(db) > before and "synced" in sidebar_text(a), timeout=60)


def advance_until(sandbox, shop_id: str, return_id: str, wanted: str, *, step: int = 6 * HOUR,
                  limit: int = 20 * 24 * HOUR) -> None:
    for _ in range(limit // step):
        if next(r for r in sandbox.returns_for(shop_id) if r["return_id"] == return_id)["return_status"] == wanted:
            return
        sandbox.advance(step)
    pytest.fail(f"the sandbox never moved {return_id} to {wanted}")


def test_a_return_goes_from_requested_to_refund_entirely_in_the_app(shop_db, sandbox):
    sync_in_sidebar(shop_db)
    waiting = returns.grid_page(shop_db, ReturnFilters(
        types=(domain.RETURN_AND_REFUND,), marketplace_statuses=("RETURN_OR_REFUND_REQUEST_PENDING",)), limit=1)
    return_id, shop_id = waiting.iloc[0]["Marketplace Return ID"], waiting.iloc[0]["Account ID"]

    def stored() -> dict:
        return returns.find_return(shop_db, return_id, shop_id)

    assert stored()["status"] == domain.REQUESTED and stored()["due_by"] is not None

    decide(shop_id, return_id, "APPROVE_RETURN")  # the buyer may now ship the item back
    assert (stored()["status"], stored()["marketplace_status"]) == (domain.PENDING, "AWAITING_BUYER_SHIP")

    advance_until(sandbox, shop_id, return_id, "BUYER_SHIPPED_ITEM")
    at = app("app_pages/detail.py", id=return_id, shop=shop_id)
    press(at, "Re-sync this return")
    assert stored()["marketplace_status"] == "BUYER_SHIPPED_ITEM"

    decide(shop_id, return_id, "APPROVE_RECEIVED_PACKAGE")  # the package arrived in good order
    assert (stored()["status"], stored()["marketplace_status"]) == (domain.ACCEPTED,
                                                                    "RETURN_OR_REFUND_REQUEST_SUCCESS")

    queue_at = app("app_pages/review_queue.py")
    rows = next(d for d in queue_at.dataframe if "rq_grid" in d.proto.id).value
    position = list(rows["Marketplace Return ID"]).index(return_id)
    queue_at.session_state["rq_grid"] = {"selection": {"rows": [position], "columns": [], "cells": []}}
    queue_at.run()
    queue_at.radio(key="rq_outcome").set_value("ok")
    queue_at.text_area(key="rq_note").input("Package complete, refund fine")
    press(queue_at, "Sign off selected")
    assert stored()["review_outcome"] == "ok"

    advance_until(sandbox, shop_id, return_id, "RETURN_OR_REFUND_REQUEST_COMPLETE")
    sync_in_sidebar(shop_db)
    assert (stored()["status"], stored()["marketplace_status"]) == (domain.REFUNDED,
                                                                    "RETURN_OR_REFUND_REQUEST_COMPLETE")

    history = review.history_frame(shop_db, shop_id, return_id)
    by_mia = history[history["Who"] == "Mia"]
    assert len(by_mia[by_mia["What"] == "Sent to TikTok"]) == 2
    assert (by_mia["What"] == "Sign-off").sum() == 1
    assert set(history.loc[history["Who"] == "sync", "To"]) >= {domain.PENDING, domain.ACCEPTED, domain.REFUNDED}
