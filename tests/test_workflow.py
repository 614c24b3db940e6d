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
        # what a sync stores beside TikTok's state (ingest.return_row)
        con.execute(f"UPDATE returns SET can_decide = {domain.can_decide_sql('returns')} WHERE return_id = ?",
                    [return_id])


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


def awaiting(db, shops: Connected, *next_actions: str, count: int = 1) -> list[tuple]:
    """(account, return_id, approve decisions, reject decisions) of `count` returns TikTok waits on, now stored."""
    def waits(obj: dict) -> bool:
        return any(a.get("action") in next_actions for a in obj.get("seller_next_action_response") or ())

    found = []
    for account, return_id in shops.pick(db, waits, count=count):
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
    assert domain.marketplace_status_label(after["marketplace_status"]) in result.message
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


# --- amounts, plain words and the decisions TikTok accepts (the decision card's logic) -----------


@pytest.mark.parametrize(("typed", "amount"), [
    ("12.50", "12.50"), ("12,50", "12.50"), (" 7 ", "7"), ("0,5", "0.5"), ("3.", "3"), ("1234,5", "1234.5"),
])
def test_an_amount_is_read_as_a_person_types_it_with_a_dot_or_a_decimal_comma(typed, amount):
    from decimal import Decimal

    assert workflow.parse_amount(typed) == Decimal(amount)


@pytest.mark.parametrize(("typed", "why"), [
    ("", "Enter an amount"), ("abc", "is not an amount"), ("12.505", "at most 2 decimals"),
    ("1,234", "at most 2 decimals"), ("1,234.50", "without a thousands separator"),
    ("1.234,50", "without a thousands separator"), ("0", "more than 0"), ("-5", "more than 0"),
    ("12,50 USD", "is not an amount"), ("1e3", "is not an amount"), ("NaN", "is not an amount"),
])
def test_an_amount_that_cannot_be_read_for_sure_is_refused_in_words(typed, why):
    with pytest.raises(WorkflowError, match=why):
        workflow.parse_amount(typed)


def test_a_partial_refund_is_checked_against_the_refund_total_before_anything_is_sent(db):
    store(db, tiktok_return("R1", "RETURN_OR_REFUND_REQUEST_PENDING"))  # 12.50 GBP, waiting for the seller
    with pytest.raises(WorkflowError, match=r"less than the refund total \(12.50 GBP\); 99,999.00 GBP is not"):
        plan_action(db, SHOP, "R1", "OFFER_PARTIAL_REFUND", partial_amount="99999")
    with pytest.raises(WorkflowError, match="less than the refund total"):
        plan_action(db, SHOP, "R1", "OFFER_PARTIAL_REFUND", partial_amount="12.50")  # all of it is no partial
    with pytest.raises(WorkflowError, match="is not an amount"):
        plan_action(db, SHOP, "R1", "OFFER_PARTIAL_REFUND", partial_amount="twelve")
    plan = plan_action(db, SHOP, "R1", "OFFER_PARTIAL_REFUND", partial_amount="4,5")
    assert plan.request["body"] == {"decision": "OFFER_PARTIAL_REFUND",
                                    "partial_refund": {"amount": "4.50", "currency": "GBP"}}
    assert plan.summary.startswith("Offer the buyer a partial refund of 4.50 GBP (of 12.50 GBP)")


def test_the_confirmation_says_in_plain_words_what_the_decision_does(db):
    store(db, tiktok_return("R1", "RETURN_OR_REFUND_REQUEST_PENDING", return_type="REFUND"),
          tiktok_return("R2", "RETURN_OR_REFUND_REQUEST_PENDING"))
    assert plan_action(db, SHOP, "R1", "APPROVE_REFUND").summary == (
        "Refund 12.50 GBP to the buyer and close the request.")
    keep = plan_action(db, SHOP, "R2", "APPROVE_RETURN", buyer_keep_item=True)
    assert keep.summary.startswith("Refund 12.50 GBP to the buyer now; the buyer keeps the item")
    assert keep.request["body"] == {"decision": "APPROVE_RETURN", "buyer_keep_item": True}
    reasons = [{"name": "seller_reject_apply_product_has_been_packed", "text": "The product has been packed"}]
    reject = plan_action(db, SHOP, "R1", "REJECT_REFUND", reject_reason=reasons[0]["name"], reject_reasons=reasons,
                         comment="Sent yesterday")
    assert reject.summary == ("Reject the refund request: the buyer gets no refund (and may appeal to TikTok). "
                              "The reason TikTok passes on: “The product has been packed”. "
                              "Your comment: “Sent yesterday”.")
    with pytest.raises(WorkflowError, match="does not offer that reject reason"):
        plan_action(db, SHOP, "R1", "REJECT_REFUND", reject_reason="made_up", reject_reasons=reasons)


def test_a_decision_tiktok_refuses_now_is_refused_before_sending(db):
    store(db, tiktok_return("R1", "RETURN_OR_REFUND_REQUEST_PENDING", return_type="REFUND"))
    # what the card holds after asking TikTok: it accepts the approval only (say, quick refund is active)
    options = workflow.DecisionOptions(("APPROVE_REFUND",), (), refused={"REJECT_REFUND": "Quick refund is active"},
                                       asked_tiktok=True)
    with pytest.raises(WorkflowError, match="REJECT_REFUND does not fit .* decisions that fit: APPROVE_REFUND"):
        plan_action(db, SHOP, "R1", "REJECT_REFUND", reject_reason="any", options=options)
    assert plan_action(db, SHOP, "R1", "APPROVE_REFUND", options=options).action == "approve"


def test_tiktok_is_asked_which_decisions_it_accepts_and_agrees_with_the_state_rules_on_fresh_returns(db, synced):
    seen = set()
    stages = ("SELLER_RESPOND_REFUND", "SELLER_RESPOND_RETURN", "SELLER_RESPOND_RECEIVE_PACKAGE")
    picked = [p for stage in stages for p in awaiting(db, synced, stage)]
    for account, return_id, approve, reject in picked:
        options = workflow.decision_options(db, account, return_id)
        assert options.asked_tiktok and options.note is None
        assert (options.approve, options.reject) == (approve, reject)  # OFFER_PARTIAL_REFUND included
        assert all(options.reject_reasons[d] for d in reject)  # TikTok's reasons come with the answer
        assert options.refused == {}
        seen.add(row(db, return_id, account.shop_id)["next_action"])
    assert seen == set(stages)


def test_a_return_that_moved_on_tiktok_since_the_sync_gets_no_decision_and_says_why(db, synced):
    from returns_core.tiktok_session import tiktok_session

    account, return_id, approve, reject = awaiting(db, synced, "SELLER_RESPOND_REFUND")[0]
    with tiktok_session(db, account) as client:  # decided elsewhere (TikTok's seller center, a colleague)
        client.approve_return(return_id, approve[0], idempotency_key="elsewhere-1")
    options = workflow.decision_options(db, account, return_id)
    assert options.decisions == ()
    assert "changed since the last sync" in options.note
    assert set(options.refused) == set(approve + reject)
    assert "already decided" in options.refused[approve[0]]


def test_when_tiktok_cannot_say_the_state_rules_decide_and_the_card_says_so(db, synced):
    from returns_core.tiktok.client import DECISION_ELIGIBILITY_PATH

    account, return_id, approve, reject = awaiting(db, synced, "SELLER_RESPOND_RETURN")[0]
    synced.sandbox.faults.inject("503", count=5, path_prefix=DECISION_ELIGIBILITY_PATH, retry_after=0)
    options = workflow.decision_options(db, account, return_id)
    assert not options.asked_tiktok
    assert (options.approve, options.reject) == (approve, reject)
    assert options.note.startswith("TikTok could not say which decisions it accepts now")


# --- several returns at once ---------------------------------------------------------------------


def test_bulk_approve_sends_each_return_with_its_own_key_and_reports_each(db, synced):
    picked = awaiting(db, synced, "SELLER_RESPOND_REFUND", "SELLER_RESPOND_RETURN", "SELLER_RESPOND_RECEIVE_PACKAGE",
                      count=3)
    [(closed_account, closed)] = synced.pick(db, lambda o: o["return_status"] == "RETURN_OR_REFUND_REQUEST_COMPLETE")
    keys = [(a.shop_id, rid) for a, rid, _, _ in picked] + [(closed_account.shop_id, closed)]
    decided_before = [len(seller_records(db, account, rid)) for account, rid, _, _ in picked]
    bulk = workflow.plan_bulk(db, keys, workflow.APPROVE)
    assert len(bulk.plans) == 3 and len({p.idempotency_key for p in bulk.plans}) == 3
    assert [o.return_id for o in bulk.left_out] == [closed]
    accounts = {a.shop_id: a for a in synced.accounts}
    outcomes = workflow.send_bulk(db, accounts, bulk, "Mia")
    assert [(o.return_id, o.ok) for o in outcomes] == [(rid, True) for _, rid in keys[:3]] + [(closed, False)]
    for shop_id, return_id in keys[:3]:
        assert row(db, return_id, shop_id)["status"] in (domain.ACCEPTED, domain.PENDING)  # moved on
        assert [(a, v.endswith(": ok")) for a, _, _, v, _, _ in history(db, return_id, "action")] == [("Mia", True)]
    assert workflow.bulk_summary(workflow.APPROVE, outcomes).startswith(f"Approved 3 of 4. Not done: {closed} (")
    # the same confirmation sent again (a double click) acts no more
    again = workflow.send_bulk(db, accounts, bulk, "Mia")
    assert all(o.ok for o in again[:3])
    assert [len(seller_records(db, account, rid)) for account, rid, _, _ in picked] == [n + 1 for n in decided_before]


def test_a_partial_bulk_failure_names_the_returns_that_failed_and_the_others_go_through(db, synced):
    from returns_core.tiktok_session import tiktok_session

    picked = awaiting(db, synced, "SELLER_RESPOND_REFUND", "SELLER_RESPOND_RETURN", count=3)
    (gone_account, gone, gone_approve, _), *others = picked
    bulk = workflow.plan_bulk(db, [(a.shop_id, rid) for a, rid, _, _ in picked], workflow.APPROVE)
    with tiktok_session(db, gone_account) as client:  # a colleague decided one meanwhile, on TikTok
        client.approve_return(gone, gone_approve[0], idempotency_key="colleague-1")
    outcomes = workflow.send_bulk(db, {a.shop_id: a for a in synced.accounts}, bulk, "Mia")
    by_id = {o.return_id: o for o in outcomes}
    assert not by_id[gone].ok and "already decided" in by_id[gone].message
    assert all(by_id[rid].ok for _, rid, _, _ in others)
    summary = workflow.bulk_summary(workflow.APPROVE, outcomes)
    assert summary.startswith("Approved 2 of 3. Not done: " + gone)


def test_bulk_reject_uses_one_reason_offered_for_every_selected_return(db, synced):
    picked = awaiting(db, synced, "SELLER_RESPOND_REFUND", count=3)
    accounts = {a.shop_id: a for a in synced.accounts}
    keys = [(a.shop_id, rid) for a, rid, _, _ in picked]
    reasons = workflow.common_reject_reasons(db, accounts, keys)
    assert reasons
    with pytest.raises(WorkflowError, match="Choose the reject reason"):
        workflow.plan_bulk(db, keys, workflow.REJECT, reject_reasons=reasons)
    bulk = workflow.plan_bulk(db, keys, workflow.REJECT, reject_reason=reasons[0]["name"], reject_reasons=reasons)
    assert bulk.summary.startswith(f"Reject {len(keys)} return") and reasons[0]["text"] in bulk.summary
    outcomes = workflow.send_bulk(db, accounts, bulk, "Mia")
    assert all(o.ok for o in outcomes), [o.message for o in outcomes]
    assert {row(db, rid, shop)["status"] for shop, rid in keys} == {domain.REJECTED}


def test_bulk_needs_a_name_and_refuses_more_than_a_page(db):
    store(db, tiktok_return("R1", "RETURN_OR_REFUND_REQUEST_PENDING", return_type="REFUND"))
    bulk = workflow.plan_bulk(db, [(SHOP, "R1")], workflow.APPROVE)
    with pytest.raises(WorkflowError, match="Say who you are"):
        workflow.send_bulk(db, {}, bulk, " ")
    with pytest.raises(WorkflowError, match="at most 50"):
        workflow.plan_bulk(db, [(SHOP, f"R{i}") for i in range(51)], workflow.APPROVE)
