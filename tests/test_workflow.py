"""Manager workflow: hand-made status moves, sign-off, notes, history, the review queue, reconciliation,
and approve/reject sent to the sandbox exactly once per idempotency key."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from datetime import datetime, timedelta

import pytest

from returns_core import domain, review, workflow
from returns_core.filters import ReturnFilters
from returns_core.store import returns
from returns_core.store.db import utcnow
from returns_core.store.return_writes import upsert_page
from returns_core.workflow import WorkflowError, add_note, change_status, plan_action, send_action, sign_off

SHOP = "7000000001"
OTHER_SHOP = "7000000002"


def tiktok_return(return_id: str, status: str, *, return_type: str = "RETURN_AND_REFUND",
                  created: datetime | None = None,
                  deadline: datetime | None = None, next_action: str | None = None) -> dict:
    """A TikTok return object (docs/tiktok_api.md 4.1), as Search Returns sends it."""
    created = created or utcnow() - timedelta(days=2)
    stamp = int((created - datetime(1970, 1, 1)).total_seconds())
    obj = {
        "return_id": return_id, "order_id": f"O-{return_id}", "return_type": return_type, "return_status": status,
        "return_reason_text": "Wrong size", "create_time": stamp, "update_time": stamp + 60,
        "refund_amount": {"currency": "GBP", "refund_total": "12.50"},
    }
    if deadline is not None:
        obj["seller_next_action_response"] = [{
            "action": next_action or "SELLER_RESPOND_RECEIVE_PACKAGE",
            "deadline": int((deadline - datetime(1970, 1, 1)).total_seconds()),
        }]
    return obj


def store(db, *objs: dict, shop_id: str = SHOP) -> None:
    """Put returns into the store the way a sync does."""
    upsert_page(db, shop_id, list(objs), synced_at=utcnow())


def row(db, return_id: str, shop_id: str = SHOP) -> dict:
    found = returns.find_return(db, return_id, shop_id)
    assert found is not None
    return found


def history(db, return_id: str, kind: str | None = None) -> list[tuple]:
    sql = "SELECT actor, kind, old_value, new_value, note, happened_at FROM history WHERE return_id = ?"
    params: list = [return_id]
    if kind:
        sql += " AND kind = ?"
        params.append(kind)
    with db.reader() as con:
        return con.execute(sql + " ORDER BY id", params).fetchall()


def force(db, return_id: str, **columns) -> None:
    """Set columns directly, to build a state that sync and users could reach over time."""
    sets = ", ".join(f"{c} = ?" for c in columns)
    with db.writer() as con:
        con.execute(f"UPDATE returns SET {sets} WHERE return_id = ?", [*columns.values(), return_id])


# --- hand-made status changes ---------------------------------------------------------------


def test_an_allowed_step_moves_status_and_records_who_and_when(db):
    store(db, tiktok_return("R1", "RETURN_OR_REFUND_REQUEST_PENDING"))
    before = utcnow()
    change_status(db, SHOP, "R1", domain.PENDING, "Ann", "buyer called")
    assert row(db, "R1")["status"] == domain.PENDING
    # TikTok still says pending-request (Requested): the two now disagree, so the row is flagged
    assert row(db, "R1")["mismatch"] is True
    actor, kind, old, new, note, when = history(db, "R1", "status")[-1]
    assert (actor, kind, old, new, note) == ("Ann", "status", "Requested", "Pending", "buyer called")
    assert before <= when <= utcnow()


@pytest.mark.parametrize(("tiktok", "current", "target"), [
    ("RETURN_OR_REFUND_REQUEST_PENDING", domain.REQUESTED, domain.ACCEPTED),  # skips Pending
    ("AWAITING_BUYER_SHIP", domain.PENDING, domain.REQUESTED),  # backwards
    ("REFUND_OR_RETURN_REQUEST_REJECT", domain.REJECTED, domain.PENDING),  # closed case
    ("RETURN_OR_REFUND_REQUEST_SUCCESS", domain.ACCEPTED, "Archived"),  # not a status
])
def test_a_step_outside_the_allowed_ones_is_refused_and_changes_nothing(db, tiktok, current, target):
    store(db, tiktok_return("R1", tiktok))
    assert row(db, "R1")["status"] == current
    events_before = history(db, "R1")
    with pytest.raises(WorkflowError):
        change_status(db, SHOP, "R1", target, "Ann")
    assert row(db, "R1")["status"] == current
    assert history(db, "R1") == events_before


def test_closing_by_hand_is_refused_until_tiktok_agrees(db):
    store(db, tiktok_return("R1", "RETURN_OR_REFUND_REQUEST_SUCCESS"))
    with pytest.raises(WorkflowError, match="TikTok's status is RETURN_OR_REFUND_REQUEST_SUCCESS"):
        change_status(db, SHOP, "R1", domain.REFUNDED, "Ann")
    assert row(db, "R1")["status"] == domain.ACCEPTED
    # TikTok completes the refund while our Status is held at Accepted: now closing is allowed
    force(db, "R1", marketplace_status="RETURN_OR_REFUND_REQUEST_COMPLETE", mismatch=True)
    change_status(db, SHOP, "R1", domain.REFUNDED, "Ann")
    assert row(db, "R1")["status"] == domain.REFUNDED
    assert row(db, "R1")["mismatch"] is False


def test_status_change_needs_a_name_and_a_known_return(db):
    store(db, tiktok_return("R1", "RETURN_OR_REFUND_REQUEST_PENDING"))
    with pytest.raises(WorkflowError, match="who you are"):
        change_status(db, SHOP, "R1", domain.PENDING, "  ")
    with pytest.raises(WorkflowError, match="not in the store"):
        change_status(db, SHOP, "NOPE", domain.PENDING, "Ann")
    assert row(db, "R1")["status"] == domain.REQUESTED


# --- sign-off, notes, history ---------------------------------------------------------------


def test_bulk_sign_off_records_outcome_reviewer_and_history_for_each(db):
    store(db, tiktok_return("A1", "RETURN_OR_REFUND_REQUEST_SUCCESS"),
          tiktok_return("A2", "REPLACEMENT_REQUEST_REFUND_SUCCESS", return_type="REPLACEMENT"))
    assert sign_off(db, [(SHOP, "A1"), (SHOP, "A2")], "quality_issue", "Mia", "stitching") == 2
    for return_id in ("A1", "A2"):
        stored = row(db, return_id)
        assert (stored["review_outcome"], stored["reviewed_by"]) == ("quality_issue", "Mia")
        assert stored["reviewed_at"] is not None
        assert history(db, return_id, "sign_off")[-1][:5] == ("Mia", "sign_off", None, "quality_issue", "stitching")


def test_sign_off_is_all_or_nothing_and_only_for_accepted_returns(db):
    store(db, tiktok_return("A1", "RETURN_OR_REFUND_REQUEST_SUCCESS"),
          tiktok_return("P1", "AWAITING_BUYER_SHIP"))
    with pytest.raises(WorkflowError, match="Only Accepted returns"):
        sign_off(db, [(SHOP, "A1"), (SHOP, "P1")], "ok", "Mia")
    assert row(db, "A1")["review_outcome"] is None
    assert history(db, "A1", "sign_off") == []
    with pytest.raises(WorkflowError, match="Unknown outcome"):
        sign_off(db, [(SHOP, "A1")], "great", "Mia")
    with pytest.raises(WorkflowError, match="Select at least one"):
        sign_off(db, [], "ok", "Mia")


def test_notes_are_appended_and_empty_notes_refused(db):
    store(db, tiktok_return("R1", "AWAITING_BUYER_SHIP"))
    add_note(db, SHOP, "R1", "Ann", "Asked the buyer for photos")
    add_note(db, SHOP, "R1", "Bo", "Photos received")
    assert [(a, n) for a, _, _, _, n, _ in history(db, "R1", "note")] == [
        ("Ann", "Asked the buyer for photos"), ("Bo", "Photos received")]
    with pytest.raises(WorkflowError, match="empty"):
        add_note(db, SHOP, "R1", "Ann", "   ")
    with pytest.raises(WorkflowError, match="too long"):
        add_note(db, SHOP, "R1", "Ann", "x" * (workflow.MAX_NOTE_LENGTH + 1))


def test_history_shows_every_change_with_who_and_when_newest_first_and_exports_csv(db):
    store(db, tiktok_return("R1", "RETURN_OR_REFUND_REQUEST_SUCCESS"))
    add_note(db, SHOP, "R1", "Ann", "checked photos")
    sign_off(db, [(SHOP, "R1")], "suspected_abuse", "Mia")
    frame = review.history_frame(db, SHOP, "R1")
    assert list(frame.columns) == list(review.HISTORY_COLUMNS)
    assert list(frame["What"]) == ["Sign-off", "Note", "First seen (sync)"]
    assert list(frame["Who"]) == ["Mia", "Ann", "sync"]
    assert frame["To"].iloc[0] == "Suspected abuse"
    assert frame["When (UTC)"].notna().all()
    exported = list(csv.DictReader(io.StringIO(review.history_csv(db, SHOP, "R1"))))
    assert [r["Who"] for r in exported] == ["Mia", "Ann", "sync"]
    assert exported[0]["When (UTC)"].endswith("Z") and exported[0]["Marketplace Return ID"] == "R1"


# --- the review queue -----------------------------------------------------------------------


def test_format_age_reads_like_a_person_would_say_it():
    assert review.format_age(3 * 86400 + 4 * 3600 + 59) == "3 d 4 h"
    assert review.format_age(5 * 3600 + 12 * 60) == "5 h 12 min"
    assert review.format_age(7 * 60 + 3) == "7 min"
    assert review.format_age(None) == ""


def test_deadline_state_marks_overdue_and_due_within_24_hours():
    now = datetime(2026, 1, 1, 12)
    assert domain.deadline_state(domain.ACCEPTED, now - timedelta(minutes=1), now) == domain.OVERDUE
    assert domain.deadline_state(domain.ACCEPTED, now + timedelta(hours=23), now) == domain.DUE_SOON
    assert domain.deadline_state(domain.ACCEPTED, now + timedelta(hours=25), now) == ""
    assert domain.deadline_state(domain.ACCEPTED, None, now) == ""


def queue_fixture(db) -> datetime:
    now = utcnow()
    store(db,
          tiktok_return("NEW", "RETURN_OR_REFUND_REQUEST_SUCCESS", created=now - timedelta(hours=5)),
          tiktok_return("OLD", "RETURN_OR_REFUND_REQUEST_SUCCESS", created=now - timedelta(days=3, hours=4, minutes=1),
                        deadline=now - timedelta(hours=1)),
          tiktok_return("MID", "EXCHANGE_REQUEST_REFUND_SUCCESS", return_type="EXCHANGE",
                        created=now - timedelta(days=1), deadline=now + timedelta(hours=3)),
          tiktok_return("PENDING", "AWAITING_BUYER_SHIP", created=now - timedelta(days=9)))
    store(db, tiktok_return("ELSEWHERE", "RETURN_OR_REFUND_REQUEST_SUCCESS", created=now - timedelta(days=4)),
          shop_id=OTHER_SHOP)
    return now


def test_queue_lists_accepted_returns_oldest_first_with_age_and_deadline(db):
    now = queue_fixture(db)
    page = review.queue_page(db, review.queue_filters(), now=now)
    assert list(page.columns) == list(review.QUEUE_COLUMNS)
    assert list(page["Marketplace Return ID"]) == ["ELSEWHERE", "OLD", "MID", "NEW"]
    by_id = page.set_index("Marketplace Return ID")
    assert by_id.loc["OLD", "Age"] == "3 d 4 h"
    assert by_id.loc["OLD", "Deadline"] == domain.OVERDUE
    assert by_id.loc["MID", "Deadline"] == domain.DUE_SOON
    assert by_id.loc["NEW", "Deadline"] == ""
    assert set(by_id["Outcome"]) == {review.NOT_SIGNED_OFF_LABEL}
    counts = returns.queue_counts(db, review.queue_filters(), now=now)
    assert (counts.total, counts.not_signed_off, counts.overdue, counts.due_soon) == (4, 4, 1, 1)


def test_queue_filters_by_account_and_outcome_and_pages_in_sql(db):
    queue_fixture(db)
    sign_off(db, [(SHOP, "OLD")], "ok", "Mia")
    only_shop = review.queue_page(db, review.queue_filters([SHOP]))
    assert "ELSEWHERE" not in set(only_shop["Marketplace Return ID"])
    open_ones = review.queue_page(db, review.queue_filters([SHOP], [review.NOT_SIGNED_OFF]))
    assert list(open_ones["Marketplace Return ID"]) == ["MID", "NEW"]
    done = review.queue_page(db, review.queue_filters((), ["ok"]))
    assert list(done["Marketplace Return ID"]) == ["OLD"]
    assert done["Signed Off By"].iloc[0] == "Mia" and done["Outcome"].iloc[0] == "OK"
    first = review.queue_page(db, review.queue_filters(), limit=2, offset=0)
    second = review.queue_page(db, review.queue_filters(), limit=2, offset=2)
    assert list(first["Marketplace Return ID"]) + list(second["Marketplace Return ID"]) == [
        "ELSEWHERE", "OLD", "MID", "NEW"]


# --- reconciliation -------------------------------------------------------------------------


def test_reconciliation_lists_every_mismatch_and_unmapped_status_and_nothing_else(db):
    store(db, tiktok_return("CLEAN", "AWAITING_BUYER_SHIP"),
          tiktok_return("MISMATCH", "RETURN_OR_REFUND_REQUEST_PENDING"),
          tiktok_return("UNMAPPED", "PARTNER_REVIEW_PENDING"))
    change_status(db, SHOP, "MISMATCH", domain.PENDING, "Ann")
    filters = review.reconciliation_filters()
    page = review.reconciliation_page(db, filters)
    assert list(page["Marketplace Return ID"]) == ["UNMAPPED", "MISMATCH"]
    problems = dict(zip(page["Marketplace Return ID"], page["Problem"], strict=True))
    assert "PARTNER_REVIEW_PENDING is not in the status mapping" in problems["UNMAPPED"]
    assert "Status is Pending" in problems["MISMATCH"] and "means Requested" in problems["MISMATCH"]
    counts = returns.flag_counts(db, filters)
    assert (counts.mismatch, counts.unmapped) == (1, 1)
    assert returns.flagged_keys(db, filters) == [(SHOP, "UNMAPPED"), (SHOP, "MISMATCH")]
    assert returns.flag_counts(db, review.reconciliation_filters([OTHER_SHOP])).total == 0
    # the grid's own filter agrees with the list
    from returns_core.store.returns import count_returns
    assert count_returns(db, ReturnFilters(flagged=True)) == 2


# --- planning an action ---------------------------------------------------------------------


def test_a_decision_that_does_not_fit_is_refused_clearly(db):
    store(db, tiktok_return("R1", "RETURN_OR_REFUND_REQUEST_PENDING", return_type="REFUND"))
    with pytest.raises(WorkflowError, match=r"APPROVE_REPLACEMENT does not fit .* APPROVE_REFUND, REJECT_REFUND"):
        plan_action(db, SHOP, "R1", "APPROVE_REPLACEMENT")
    store(db, tiktok_return("DONE", "RETURN_OR_REFUND_REQUEST_COMPLETE"))
    with pytest.raises(WorkflowError, match="TikTok is not waiting for the seller"):
        plan_action(db, SHOP, "DONE", "APPROVE_RETURN")
    with pytest.raises(WorkflowError, match="reject reason"):
        plan_action(db, SHOP, "R1", "REJECT_REFUND")


def test_the_plan_shows_exactly_what_will_be_sent(db):
    store(db, tiktok_return("R1", "RETURN_OR_REFUND_REQUEST_PENDING", return_type="REFUND"))
    plan = plan_action(db, SHOP, "R1", "REJECT_REFUND", reject_reason="seller_reject_apply_product_has_been_packed",
                       comment="  packed already  ")
    assert plan.request == {
        "method": "POST",
        "path": "/return_refund/202309/returns/R1/reject",
        "query": {"idempotency_key": plan.idempotency_key},
        "body": {"decision": "REJECT_REFUND", "reject_reason": "seller_reject_apply_product_has_been_packed",
                 "comment": "packed already"},
    }
    assert plan_action(db, SHOP, "R1", "APPROVE_REFUND").idempotency_key != plan.idempotency_key
    assert json.dumps(plan.request)  # stored as JSON in the actions table and the history


# --- against the sandbox --------------------------------------------------------------------


@dataclasses.dataclass
class Connected:
    """The sandbox shops connected in the store; returns are synced one by one as a test needs them."""

    sandbox: object
    accounts: list
    transport: object = None

    def pick(self, db, want, *, count: int = 1) -> list[tuple]:
        """Sync and return (account, return_id) of the first `count` sandbox returns matching `want`."""
        from returns_core.sync import sync_return

        picked = []
        for account in self.accounts:
            for obj in self.sandbox.returns_for(account.shop_id):
                if len(picked) < count and want(obj):
                    sync_return(db, account, obj["return_id"], transport=self.transport)
                    picked.append((account, obj["return_id"]))
        assert len(picked) == count, "the sandbox has too few returns of the kind this test needs"
        return picked


@pytest.fixture
def synced(sandbox, sandbox_accounts) -> Connected:
    """Both sandbox shops connected over real HTTP."""
    return Connected(sandbox, sandbox_accounts)


def awaiting(db, shops: Connected, *next_actions: str) -> list[tuple]:
    """(account, return_id, approve decisions, reject decisions) of a return TikTok waits on, now in the store."""
    def waits(obj: dict) -> bool:
        return any(a.get("action") in next_actions for a in obj.get("seller_next_action_response") or ())

    found = []
    for account, return_id in shops.pick(db, waits):
        stored = row(db, return_id, account.shop_id)
        found.append((account, return_id, *domain.seller_decisions(
            stored["return_type"], stored["marketplace_status"], stored["next_action"])))
    return found


def seller_records(db, account, return_id: str, transport=None) -> list[dict]:
    """TikTok's own event records of the return that the seller caused."""
    from returns_core.tiktok_session import tiktok_session

    with tiktok_session(db, account, transport=transport) as client:
        return [r for r in client.get_return_records(return_id) if r.get("role") == "SELLER"]


def test_approve_moves_the_return_on_tiktok_and_in_the_store_and_records_history(db, synced):
    account, return_id, approve, _ = awaiting(db, synced, "SELLER_RESPOND_REFUND", "SELLER_RESPOND_RETURN",
                                              "SELLER_RESPOND_RECEIVE_PACKAGE")[0]
    before = row(db, return_id, account.shop_id)
    decided_before = len(seller_records(db, account, return_id))
    plan = plan_action(db, account.shop_id, return_id, approve[0])
    result = send_action(db, account, plan, "Mia")
    assert result.ok and not result.repeated, result.message
    after = row(db, return_id, account.shop_id)
    assert after["marketplace_status"] != before["marketplace_status"]
    assert result.marketplace_status == after["marketplace_status"]
    assert after["marketplace_status"] in result.message
    assert after["status"] == domain.mapped_status(after["marketplace_status"])
    assert len(seller_records(db, account, return_id)) == decided_before + 1
    sent = history(db, return_id, "action")
    assert [(a, k, v) for a, k, _, v, _, _ in sent] == [("Mia", "action", f"{approve[0]}: ok")]
    # the re-sync afterwards recorded TikTok's move too
    assert history(db, return_id, "marketplace_status")[-1][2:4] == (before["marketplace_status"],
                                                                     after["marketplace_status"])


def test_reject_with_a_live_reason_over_the_in_process_transport(db, sandbox):
    from returns_core.connect import add_accounts_with_tokens
    from returns_core.tiktok.client import TokenSet
    from returns_core.tiktok.sandbox import SANDBOX_APP_KEY, SANDBOX_APP_SECRET
    from returns_core.tiktok_session import tiktok_session

    transport = sandbox.transport()
    tokens = TokenSet.from_data(sandbox.issue_tokens())
    accounts = add_accounts_with_tokens(db, "In-process", SANDBOX_APP_KEY, SANDBOX_APP_SECRET, tokens.access_token,
                                        tokens.refresh_token, api_base="https://sandbox.test",
                                        auth_base="https://sandbox.test", transport=transport, tokens=tokens)
    shops = Connected(sandbox, accounts, transport)
    account, return_id, _, reject = awaiting(db, shops, "SELLER_RESPOND_REFUND", "SELLER_RESPOND_RETURN")[0]
    with tiktok_session(db, account, transport=transport) as client:
        reasons = client.get_reject_reasons(return_id)
    assert reasons, "TikTok offers reject reasons for a pending request"
    plan = plan_action(db, account.shop_id, return_id, reject[0], reject_reason=reasons[0]["name"],
                       comment="Photos show the item unused")
    result = send_action(db, account, plan, "Mia", transport=transport)
    assert result.ok, result.message
    after = row(db, return_id, account.shop_id)
    assert after["status"] == domain.REJECTED
    assert after["marketplace_status"] in {"REFUND_OR_RETURN_REQUEST_REJECT", "REJECT_RECEIVE_PACKAGE"}
    records = seller_records(db, account, return_id, transport)
    assert len(records) == 1 and records[0]["note"] == "Photos show the item unused"
    actor, _, _, new, _, _ = history(db, return_id, "action")[-1]
    assert (actor, new) == ("Mia", f"{reject[0]}: ok")
    with db.reader() as con:
        request = json.loads(con.execute("SELECT details FROM history WHERE kind = 'action' AND return_id = ?",
                                         [return_id]).fetchone()[0])
    assert request == plan.request  # the history keeps exactly what was sent


def test_the_same_plan_sent_twice_acts_once_and_the_second_reports_repeated(db, synced):
    account, return_id, approve, _ = awaiting(db, synced, "SELLER_RESPOND_REFUND", "SELLER_RESPOND_RETURN",
                                              "SELLER_RESPOND_RECEIVE_PACKAGE")[0]
    decided_before = len(seller_records(db, account, return_id))
    plan = plan_action(db, account.shop_id, return_id, approve[0])
    first = send_action(db, account, plan, "Mia")
    second = send_action(db, account, plan, "Mia")
    assert first.ok and not first.repeated
    assert second.ok and second.repeated
    assert second.marketplace_status == first.marketplace_status
    assert len(seller_records(db, account, return_id)) == decided_before + 1
    with db.reader() as con:
        assert con.execute("SELECT count(*) FROM actions WHERE return_id = ?", [return_id]).fetchone()[0] == 1
    assert len(history(db, return_id, "action")) == 1


def test_a_retry_after_a_lost_answer_reuses_the_key_and_tiktok_acts_once(db, synced):
    account, return_id, approve, _ = awaiting(db, synced, "SELLER_RESPOND_REFUND", "SELLER_RESPOND_RETURN",
                                              "SELLER_RESPOND_RECEIVE_PACKAGE")[0]
    decided_before = len(seller_records(db, account, return_id))
    plan = plan_action(db, account.shop_id, return_id, approve[0])
    assert send_action(db, account, plan, "Mia").ok
    # as if the app died before it could record the answer: our table says "sent", not "ok"
    with db.writer() as con:
        con.execute("UPDATE actions SET state = 'sent', result = NULL WHERE idempotency_key = ?",
                    [plan.idempotency_key])
    retry = send_action(db, account, plan, "Mia")
    assert retry.ok, retry.message  # TikTok answers the first result for the same key, not "already decided"
    assert len(seller_records(db, account, return_id)) == decided_before + 1


def test_one_confirmation_key_cannot_carry_a_different_request(db, synced):
    account, return_id, approve, reject = awaiting(db, synced, "SELLER_RESPOND_REFUND", "SELLER_RESPOND_RETURN")[0]
    plan = plan_action(db, account.shop_id, return_id, approve[0])
    tampered = dataclasses.replace(plan_action(db, account.shop_id, return_id, reject[0], reject_reason="x"),
                                   idempotency_key=plan.idempotency_key)
    assert send_action(db, account, plan, "Mia").ok
    with pytest.raises(WorkflowError, match="different request"):
        send_action(db, account, tampered, "Mia")


def test_tiktok_business_error_is_explained_in_words_and_recorded(db, synced):
    account, return_id, approve, _ = awaiting(db, synced, "SELLER_RESPOND_REFUND", "SELLER_RESPOND_RETURN",
                                              "SELLER_RESPOND_RECEIVE_PACKAGE")[0]
    decided_before = len(seller_records(db, account, return_id))
    stale = plan_action(db, account.shop_id, return_id, approve[0])  # planned on what we last saw
    assert send_action(db, account, plan_action(db, account.shop_id, return_id, approve[0]), "Ann").ok
    result = send_action(db, account, stale, "Mia")  # a second manager, on a stale screen
    assert not result.ok
    assert "already decided" in result.message or "does not fit" in result.message
    assert "(2502" in result.message  # the code stays visible for support
    assert len(seller_records(db, account, return_id)) == decided_before + 1
    actor, _, _, new, note, _ = history(db, return_id, "action")[-1]
    assert (actor, new, note) == ("Mia", f"{approve[0]}: failed", result.message)
    with db.reader() as con:
        assert con.execute("SELECT state FROM actions WHERE idempotency_key = ?",
                           [stale.idempotency_key]).fetchone()[0] == "failed"


def test_explain_turns_api_errors_into_words():
    from returns_core.tiktok import errors

    assert "reconnect the shop" in workflow.explain(errors.AuthError("bad sign", code=errors.SIGN_INVALID))
    assert "Retrying is safe" in workflow.explain(errors.TransportError("timed out"))
    quick = workflow.explain(errors.BusinessError("x", code=errors.QUICK_REFUND_ACTIVE))
    assert quick.startswith("Quick refund is active")


def test_resync_clears_a_mismatch_left_by_a_missed_update(db, synced):
    [(account, return_id)] = synced.pick(db, lambda o: o["return_status"] == "RETURN_OR_REFUND_REQUEST_COMPLETE")
    tiktok_status = "RETURN_OR_REFUND_REQUEST_COMPLETE"
    # as if we had missed TikTok's last two moves: our copy is stale and Status was moved by hand
    force(db, return_id, marketplace_status="RETURN_OR_REFUND_REQUEST_SUCCESS", status=domain.PENDING, mismatch=True)
    assert (account.shop_id, return_id) in returns.flagged_keys(db, review.reconciliation_filters())
    [result] = review.resync_returns(db, [(account.shop_id, return_id)])
    assert result.outcome is review.ResyncOutcome.FIXED, result.message
    fixed = row(db, return_id, account.shop_id)
    assert (fixed["marketplace_status"], fixed["status"], fixed["mismatch"]) == (tiktok_status, domain.REFUNDED, False)
    assert (account.shop_id, return_id) not in returns.flagged_keys(db, review.reconciliation_filters())


def test_resync_of_an_unknown_return_fails_in_words_without_stopping_the_others(db, synced):
    [(account, known)] = synced.pick(db, lambda o: True)
    results = review.resync_returns(db, [(account.shop_id, "4035000000000000001"), (account.shop_id, known)])
    assert [r.ok for r in results] == [False, True]
    assert results[0].message


def test_a_failed_resync_after_a_sent_decision_still_records_it_as_sent(db, synced, monkeypatch):
    from returns_core import sync
    from returns_core.tiktok import errors

    account, return_id, approve, _ = awaiting(db, synced, "SELLER_RESPOND_REFUND", "SELLER_RESPOND_RETURN",
                                              "SELLER_RESPOND_RECEIVE_PACKAGE")[0]
    plan = plan_action(db, account.shop_id, return_id, approve[0])

    def network_down(*args, **kwargs):
        raise errors.TransportError("ConnectError talking to the sandbox")

    monkeypatch.setattr(sync, "sync_return", network_down)
    result = send_action(db, account, plan, "Mia")
    assert result.ok and "re-sync afterwards failed" in result.message
    with db.reader() as con:
        assert con.execute("SELECT state FROM actions WHERE idempotency_key = ?",
                           [plan.idempotency_key]).fetchone()[0] == "ok"
    assert history(db, return_id, "action")[-1][3] == f"{approve[0]}: ok"
    assert send_action(db, account, plan, "Mia").repeated  # a retry never sends it again
