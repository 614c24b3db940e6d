"""AppTest on app.py: the Review Queue, Reconciliation and the detail page's workflow components, with roles
enforced via at.user.

The store is tests/ui_fixtures.py's: Accepted returns R2 (Alpha, due in 48 h) and R6 (Beta, due in 10 h),
R8 with a TikTok status we do not map.
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from streamlit.testing.v1 import AppTest

from returns_core import domain, review, workflow
from returns_core.store.db import Database
from returns_core.store.returns import find_return
from tests import ui_fixtures as ui
from tests.apptest import button, open_app, texts
from tests.ui_fixtures import ALPHA, ALPHA_NAME, BETA

QUEUE_PAGE = "app_pages/review_queue.py"
RECONCILIATION_PAGE = "app_pages/reconciliation.py"
ALPHA_LABEL = f"{ALPHA_NAME} ({ALPHA})"

ANALYST = {"is_logged_in": True, "email": "ana@shop.example"}
MANAGER = {"is_logged_in": True, "email": "boss@shop.example"}

@pytest.fixture
def app_db(app_db) -> Database:
    """The store the app opens (conftest's app_db), seeded with the known returns."""
    ui.seed_store(app_db)
    return app_db


@pytest.fixture
def open_page():
    """open_page(page, user=..., login=False, name=..., **query): a session of app.py on that page."""

    def run(page: str, *, user: dict | None = None, login: bool = False, name: str | None = "Mia",
            **query: str) -> AppTest:
        return open_app(page, actor=name, user=user, login=login, **query)

    return run


def shown(at: AppTest) -> str:
    """Every text on the screen as a reader sees it: Markdown's backslash escapes (md_escape) taken out."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", texts(at))


def queue(at: AppTest):
    return next(d for d in at.dataframe if "rq_grid" in d.proto.id).value


def select_rows(at: AppTest, rows: list[int]) -> AppTest:
    at.session_state["rq_grid"] = {"selection": {"rows": rows, "columns": [], "cells": []}}
    return at.run()


# --- review queue ---------------------------------------------------------------------------


def test_queue_lists_accepted_returns_oldest_first_with_age_and_deadline(app_db, open_page):
    at = open_page(QUEUE_PAGE)
    assert at.title[0].value == "Review Queue"
    frame = queue(at)
    assert list(frame["Marketplace Return ID"]) == ["R2", "R6"]
    by_id = frame.set_index("Marketplace Return ID")
    assert by_id.loc["R6", "Deadline"].endswith("Due soon")
    assert by_id.loc["R2", "Deadline"] == ""
    assert by_id.loc["R2", "Age"].endswith(" h") and " d " in by_id.loc["R2", "Age"]
    metrics = {m.label: m.value for m in at.main.metric}
    assert metrics["In the queue"] == "2" and metrics["Not signed off"] == "2"


def test_sign_off_one_return_with_outcome_and_note(app_db, open_page):
    at = open_page(QUEUE_PAGE, name="Mia")
    select_rows(at, [1])
    at.radio(key="rq_outcome").set_value("quality_issue")
    at.text_area(key="rq_note").input("seam came apart")
    button(at, "Sign off selected").click().run()
    assert not at.exception, at.exception
    assert "Signed off 1 return(s) as Quality issue" in texts(at)
    stored = find_return(app_db, "R6", BETA)
    assert (stored["review_outcome"], stored["reviewed_by"]) == ("quality_issue", "Mia")
    # the default filter shows what still needs a sign-off
    assert list(queue(at)["Marketplace Return ID"]) == ["R2"]
    assert review.history_frame(app_db, BETA, "R6")["Note"].iloc[0] == "seam came apart"


def test_bulk_sign_off_of_the_selected_rows(app_db, open_page):
    at = open_page(QUEUE_PAGE)
    select_rows(at, [0, 1])
    assert "Sign off 2 selected return(s)" in texts(at)
    button(at, "Sign off selected").click().run()
    assert not at.exception, at.exception
    assert "Signed off 2 return(s) as OK" in texts(at)
    assert {find_return(app_db, r, s)["review_outcome"] for s, r in ((ALPHA, "R2"), (BETA, "R6"))} == {"ok"}
    assert "Nothing to review" in texts(at)


def test_queue_filters_by_outcome_and_by_the_sidebar_account(app_db, open_page):
    workflow.sign_off(app_db, [(ALPHA, "R2")], "suspected_abuse", "Mia")
    at = open_page(QUEUE_PAGE)
    assert list(queue(at)["Marketplace Return ID"]) == ["R6"]
    at.multiselect(key="rq_outcomes").set_value(["suspected_abuse"]).run()
    assert list(queue(at)["Marketplace Return ID"]) == ["R2"]
    assert queue(at)["Outcome"].iloc[0] == "Suspected abuse"
    at.multiselect(key="rq_outcomes").set_value([]).run()
    assert list(queue(at)["Marketplace Return ID"]) == ["R2", "R6"]
    alpha = open_page(QUEUE_PAGE, account=ALPHA_LABEL)
    alpha.multiselect(key="rq_outcomes").set_value([]).run()
    assert list(queue(alpha)["Marketplace Return ID"]) == ["R2"]


def test_sign_off_asks_for_a_name_where_it_happens_without_login(app_db, open_page):
    at = open_page(QUEUE_PAGE, name=None)
    select_rows(at, [0])
    assert at.text_input(key="rq_signoff_name").label.startswith("Who is deciding?")
    assert button(at, "Sign off selected").disabled
    at.text_input(key="rq_signoff_name").input("Noor")
    button(at, "Use this name").click().run()
    assert not button(at, "Sign off selected").disabled
    button(at, "Sign off selected").click().run()
    assert not at.exception, at.exception
    assert find_return(app_db, "R2", ALPHA)["reviewed_by"] == "Noor"


# --- roles ----------------------------------------------------------------------------------


def test_analyst_cannot_sign_off(app_db, open_page):
    at = open_page(QUEUE_PAGE, login=True, user=ANALYST)
    select_rows(at, [0])
    assert "Read only: your role is analyst" in texts(at)
    assert button(at, "Sign off selected").disabled
    assert at.radio(key="rq_outcome").disabled
    assert find_return(app_db, "R2", ALPHA)["review_outcome"] is None


def test_signed_out_user_with_login_configured_reads_only(app_db, open_page):
    at = open_page(QUEUE_PAGE, login=True, user={"is_logged_in": False})
    select_rows(at, [0])
    assert "log in" in texts(at)
    assert button(at, "Sign off selected").disabled


def test_manager_signs_off_under_their_email(app_db, open_page):
    at = open_page(QUEUE_PAGE, login=True, user=MANAGER)
    select_rows(at, [0])
    assert not button(at, "Sign off selected").disabled
    button(at, "Sign off selected").click().run()
    assert not at.exception, at.exception
    assert find_return(app_db, "R2", ALPHA)["reviewed_by"] == "boss@shop.example"


# --- reconciliation -------------------------------------------------------------------------


def test_reconciliation_lists_every_mismatch_and_unmapped_status(app_db, open_page):
    workflow.change_status(app_db, ALPHA, "R1", domain.PENDING, "Mia")  # TikTok still says Requested
    at = open_page(RECONCILIATION_PAGE)
    assert at.title[0].value == "Reconciliation"
    page_text = texts(at)
    assert "`R8`" in page_text and "`R1`" in page_text
    assert "BRAND_NEW_TIKTOK_STATUS is not in the status mapping" in page_text
    assert "Status is Pending" in page_text
    assert {m.label: m.value for m in at.main.metric} == {"Mismatches": "1", "Unmapped statuses": "1"}
    resync = [b for b in at.button if b.label == "Re-sync"]
    assert len(resync) == 2 and not any(b.disabled for b in resync)
    assert not button(at, "Re-sync all listed (2)").disabled


def test_reconciliation_is_read_only_for_an_analyst(app_db, open_page):
    at = open_page(RECONCILIATION_PAGE, login=True, user=ANALYST)
    assert "Read only" in texts(at)
    assert all(b.disabled for b in at.button if b.label.startswith("Re-sync"))


# --- actions on TikTok, status, notes and history: the components, on the detail page ---------


@pytest.fixture
def sandbox_db(tmp_path, monkeypatch, sandbox, sandbox_server) -> Database:
    """The store the app opens, with the sandbox's shops connected over real HTTP (nothing synced yet)."""
    from returns_core.connect import add_accounts_with_tokens
    from returns_core.tiktok.client import TokenSet
    from returns_core.tiktok.sandbox import SANDBOX_APP_KEY, SANDBOX_APP_SECRET

    path = tmp_path / "app.duckdb"
    monkeypatch.setenv("RETURNS_DB", str(path))
    monkeypatch.setenv("RETURNS_DEMO", "0")
    monkeypatch.delenv("RETURNS_DESK_KEY", raising=False)
    database = Database(path, lock_timeout=10)
    tokens = TokenSet.from_data(sandbox.issue_tokens())
    add_accounts_with_tokens(database, "Sandbox", SANDBOX_APP_KEY, SANDBOX_APP_SECRET, tokens.access_token,
                             tokens.refresh_token, api_base=sandbox_server.url, auth_base=sandbox_server.url,
                             is_sandbox=True, tokens=tokens)
    return database


def pending_request(db: Database, sandbox) -> tuple[str, str]:
    """A buyer's request TikTok waits on the seller for (refund or return), synced into the store."""
    from returns_core.accounts import list_accounts
    from returns_core.sync import sync_return

    for account in list_accounts(db):
        for obj in sandbox.returns_for(account.shop_id):
            if obj["return_status"] == "RETURN_OR_REFUND_REQUEST_PENDING" and obj.get("seller_next_action_response"):
                sync_return(db, account, obj["return_id"])
                return account.shop_id, obj["return_id"]
    raise AssertionError("the sandbox has no pending request")


def open_return(shop_id: str, return_id: str, *, user: dict | None = None, login: bool = False,
                name: str | None = "Mia") -> AppTest:
    """The return's detail page in app.py, where the workflow components are drawn."""
    return open_app("app_pages/detail.py", actor=name, user=user, login=login, shop=shop_id, id=return_id)


def seller_decisions_on_tiktok(sandbox, shop_id: str, return_id: str) -> int:
    """How many decisions TikTok (the sandbox) applied to this return."""
    return sum(1 for entry in sandbox._world.decision_log if entry["return_id"] == return_id)


def test_approve_shows_the_exact_request_then_sends_it_once_and_shows_the_result(sandbox_db, sandbox):
    shop_id, return_id = pending_request(sandbox_db, sandbox)
    key = f"wf_act_{shop_id}_{return_id}"
    at = open_return(shop_id, return_id)
    decision = at.radio(key=f"{key}_decision")
    assert decision.value is None and button(at, "Review the decision").disabled  # nothing pre-selected
    approve = next(d for d in decision.options if d.startswith("Approve"))
    decision.set_value(next(d for d, label in domain.DECISION_LABELS.items() if label == approve)).run()
    button(at, "Review the decision").click().run()
    request = next(j.value for j in at.json if "idempotency_key" in j.value)  # the card's, not the raw payload
    assert '"path": "/return_refund/202309/returns/' + return_id + '/approve"' in request.replace("\n", "")
    plan = at.session_state[f"{key}_plan"]
    assert plan.idempotency_key in request
    assert f"**{plan.summary}**" in shown(at)  # the plain words, above the request
    assert seller_decisions_on_tiktok(sandbox, shop_id, return_id) == 0  # nothing sent before confirming
    button(at, "Send to TikTok").click().run()
    assert not at.exception, at.exception
    stored = find_return(sandbox_db, return_id, shop_id)
    assert stored["marketplace_status"] != "RETURN_OR_REFUND_REQUEST_PENDING"
    label = domain.marketplace_status_label(stored["marketplace_status"])
    assert f"Status is now {stored['status']}; TikTok now shows “{label}”" in shown(at)
    assert seller_decisions_on_tiktok(sandbox, shop_id, return_id) == 1
    # a second click that arrives with the same open confirmation acts no more
    at.session_state[f"{key}_plan"] = plan
    at.run()
    button(at, "Send to TikTok").click().run()
    assert "nothing was sent again" in texts(at)
    assert seller_decisions_on_tiktok(sandbox, shop_id, return_id) == 1
    history = review.history_frame(sandbox_db, shop_id, return_id)
    assert list(history.loc[history["What"] == "Sent to TikTok", "Who"]) == ["Mia"]


def test_reject_offers_the_reasons_fetched_live_and_sends_the_chosen_one(sandbox_db, sandbox):
    shop_id, return_id = pending_request(sandbox_db, sandbox)
    key = f"wf_act_{shop_id}_{return_id}"
    at = open_return(shop_id, return_id)
    reject = next(o for o in at.radio(key=f"{key}_decision").options if o.startswith("Reject"))
    at.radio(key=f"{key}_decision").set_value(
        next(d for d, label in domain.DECISION_LABELS.items() if label == reject)).run()
    reasons = at.selectbox(key=f"{key}_reason")
    assert reasons.value is None and len(reasons.options) >= 1  # TikTok's reasons, none pre-selected
    options = at.session_state[f"{key}_options"][1]
    offered = next(iter(options.reject_reasons.values()))
    reasons.set_value(offered[-1]["name"])
    at.text_area(key=f"{key}_comment").input("Item shows signs of use")
    button(at, "Review the decision").click().run()
    request = next(j.value for j in at.json if "idempotency_key" in j.value)
    assert '"reject_reason"' in request and "Item shows signs of use" in request
    button(at, "Send to TikTok").click().run()
    assert not at.exception, at.exception
    assert find_return(sandbox_db, return_id, shop_id)["status"] == domain.REJECTED
    assert seller_decisions_on_tiktok(sandbox, shop_id, return_id) == 1


def test_analyst_cannot_approve_or_reject(sandbox_db, sandbox):
    shop_id, return_id = pending_request(sandbox_db, sandbox)
    at = open_return(shop_id, return_id, login=True, user=ANALYST)
    assert "Read only: your role is analyst" in texts(at)
    assert at.radio(key=f"wf_act_{shop_id}_{return_id}_decision").disabled
    assert button(at, "Review the decision").disabled
    assert button(at, "Change status").disabled and button(at, "Add note").disabled


def test_manager_can_approve_under_their_email(sandbox_db, sandbox):
    shop_id, return_id = pending_request(sandbox_db, sandbox)
    key = f"wf_act_{shop_id}_{return_id}"
    at = open_return(shop_id, return_id, login=True, user=MANAGER)
    assert not [t for t in at.text_input if t.key.endswith("_name")]  # the signed-in user is who decides
    decision = at.radio(key=f"{key}_decision")
    decision.set_value(decision.options and next(d for d in domain.DECISION_LABELS if d.startswith("APPROVE")
                                                 and domain.DECISION_LABELS[d] in decision.options)).run()
    button(at, "Review the decision").click().run()
    button(at, "Send to TikTok").click().run()
    assert not at.exception, at.exception
    history = review.history_frame(sandbox_db, shop_id, return_id)
    assert list(history.loc[history["What"] == "Sent to TikTok", "Who"]) == ["boss@shop.example"]


def test_status_change_refusal_is_explained_and_a_note_lands_in_the_history(app_db):
    at = open_return(ALPHA, "R2")  # Accepted; TikTok has not completed the refund
    key = f"wf_status_{ALPHA}_R2"
    at.selectbox(key=f"{key}_target").set_value(domain.REFUNDED)
    button(at, "Change status").click().run()
    assert "Cannot close as Refund: TikTok's status is RETURN_OR_REFUND_REQUEST_SUCCESS" in texts(at)
    assert find_return(app_db, "R2", ALPHA)["status"] == domain.ACCEPTED
    at.text_area(key=f"wf_note_{ALPHA}_R2_text").input("Customer sent photos")
    button(at, "Add note").click().run()
    assert not at.exception, at.exception
    assert "Note added." in texts(at)
    history = next(d.value for d in at.dataframe if "What" in d.value.columns)
    assert (history.iloc[0]["What"], history.iloc[0]["Who"], history.iloc[0]["Note"]) == (
        "Note", "Mia", "Customer sent photos")
    assert any(b.proto.label == "Export history (CSV)" for b in at.get("download_button"))


def test_queue_pages_in_sql_and_a_new_page_starts_with_nothing_selected(app_db, open_page):
    from datetime import timedelta

    from returns_core.store.db import utcnow
    from returns_core.store.return_writes import upsert_page

    start = utcnow() - timedelta(days=30)
    upsert_page(app_db, ALPHA, [
        {"return_id": f"Q{i:03}", "return_type": "REFUND", "return_status": "RETURN_OR_REFUND_REQUEST_SUCCESS",
         "create_time": int((start + timedelta(hours=i) - datetime(1970, 1, 1)).total_seconds())}
        for i in range(60)], synced_at=utcnow())
    at = open_page(QUEUE_PAGE)
    first = list(queue(at)["Marketplace Return ID"])
    assert len(first) == 50 and first[:2] == ["R2", "R6"] and first[2] == "Q000"  # R2, R6 are older
    select_rows(at, [0])
    at.number_input(key="rq_page").set_value(2).run()
    assert list(queue(at)["Marketplace Return ID"]) == [f"Q{i:03}" for i in range(48, 60)]
    assert "select rows in the queue" in texts(at)  # the selection did not carry over to other rows
