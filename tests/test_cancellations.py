"""Cancellations, the second queue, end to end over real HTTP on 127.0.0.1 against the sandbox.

The sandbox simulates buyers' cancellations before shipment (pending with the shop's answer window,
TikTok approving when nobody answers, the buyer withdrawing, the seller approving or rejecting with
a reason, once per idempotency key); the client reads and answers them; a sync stores them beside
the returns with the same guarantees: exact, incremental by their own update_time watermark, never
deleting, unknown statuses kept verbatim and flagged, the raw payload kept, faults survived.
"""

from __future__ import annotations

import itertools
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from returns_core import domain
from returns_core.ingest import to_utc
from returns_core.store.db import Database, utcnow
from returns_core.store.return_writes import upsert_page
from returns_core.store.sync_runs import page as sync_runs_page
from returns_core.store.sync_runs import watermark
from returns_core.sync import sync_account, sync_accounts, sync_cancellation
from returns_core.tiktok import errors
from returns_core.tiktok.client import TikTokClient
from returns_core.tiktok.sandbox import SANDBOX_APP_KEY, SANDBOX_APP_SECRET, Sandbox
from returns_core.tiktok.sandbox.cancellations import window_hours
from returns_core.tiktok.signing import sign
from tests.reliability import FAST_RETRY, connect, dump, steady_clock
from tests.tiktok_spec import SERVER, closed_contract, conforms, needs_spec

SETTINGS = {"seed": 7, "shops": 1, "returns": 60, "cancellations": 90}
HOUR = 3600
CANCEL_SEARCH = "/return_refund/202309/cancellations/search"


@pytest.fixture(scope="module")
def world_clock():
    return steady_clock()


@pytest.fixture
def world(world_clock) -> Sandbox:
    return Sandbox(**SETTINGS, wall_clock=world_clock)


@pytest.fixture
def served(world):
    with world.serve(live=False) as server:
        yield server


@pytest.fixture
def linked(db, world, served):
    return connect(db, world, served.url)


@pytest.fixture
def client(world, served, linked):
    _, tokens = linked
    with TikTokClient(SANDBOX_APP_KEY, SANDBOX_APP_SECRET, tokens.access_token, tokens.refresh_token,
                      world.shops[0]["cipher"], api_base=served.url, auth_base=served.url, retry=FAST_RETRY) as c:
        yield c


def shop_id(world: Sandbox) -> str:
    return world.shops[0]["id"]


def pending(world: Sandbox) -> dict:
    """A cancellation waiting for the seller: the world moves an hour at a time until one is (bounded)."""
    for _ in range(24 * 30):
        waiting = [c for c in world.cancellations_for(shop_id(world))
                   if c["cancel_status"] == "CANCELLATION_REQUEST_PENDING"]
        if waiting:
            return waiting[0]
        world.advance(HOUR)
    raise AssertionError("no buyer asked to cancel in 30 days of the sandbox")


def cancellations_view(db: Database, shop: str) -> dict[str, tuple]:
    with db.reader() as con:
        rows = con.execute(
            "SELECT return_id, kind, type, return_type, marketplace_status, status, unmapped, refund_total, "
            "updated_at, due_by, next_action, payload FROM returns WHERE shop_id = ? AND kind = 'cancellation'",
            [shop]).fetchall()
    return {r[0]: r[1:-1] + (json.loads(r[-1]),) for r in rows}


def truth(world: Sandbox) -> dict[str, tuple]:
    """The same view from the sandbox's ground truth, through the cancellations' own status mapping."""
    view = {}
    for obj in world.cancellations_for(shop_id(world)):
        action = (obj.get("seller_next_action_response") or [{}])[0]
        view[obj["cancel_id"]] = (
            "cancellation", "Cancellation", obj["cancel_type"], obj["cancel_status"],
            domain.CANCELLATION_STATUS_MAP[obj["cancel_status"]], False,
            Decimal(obj["refund_amount"]["refund_total"]).quantize(Decimal("0.0001")), to_utc(obj["update_time"]),
            to_utc(action.get("deadline")), action.get("action"), obj)
    return view


# --- the sandbox ----------------------------------------------------------------------------------


def test_a_buyer_cancellation_waits_for_the_shops_window_then_tiktok_approves_it(world):
    asked = pending(world)
    hours = window_hours(world.catalogue.shops[0])
    deadline = asked["seller_next_action_response"][0]["deadline"]
    if hours is not None:
        assert deadline == asked["create_time"] + hours * HOUR
    assert asked["seller_next_action_response"][0]["action"] == "SELLER_RESPOND_CANCEL"
    assert asked["cancel_type"] == "BUYER_CANCEL" and asked["role"] == "BUYER"
    world.advance(max(0, deadline - world.now()) + 1)
    after = next(c for c in world.cancellations_for(shop_id(world)) if c["cancel_id"] == asked["cancel_id"])
    # unless the buyer withdrew first, TikTok decided: approved, nothing left for the seller
    assert after["cancel_status"] in ("CANCELLATION_REQUEST_SUCCESS", "CANCELLATION_REQUEST_COMPLETE",
                                      "CANCELLATION_REQUEST_CANCELLED")
    assert "seller_next_action_response" not in after
    assert after["update_time"] > asked["update_time"]


def test_every_shop_has_its_own_window_of_1_3_or_5_hours_or_before_ready_to_ship():
    sandbox = Sandbox(seed=3, shops=4, returns=10, cancellations=10, wall_clock=steady_clock())
    assert {window_hours(shop) for shop in sandbox.catalogue.shops} == {1, 3, 5, None}


def test_search_pages_follow_keyset_order_with_page_sizes_from_1_and_both_status_spellings(client, world):
    everything = world.cancellations_for(shop_id(world))
    assert len(everything) >= 80
    seen = [c for page in client.iter_cancellation_pages(page_size=7) for c in page.cancellations]
    assert sorted(c["cancel_id"] for c in seen) == sorted(c["cancel_id"] for c in everything)
    assert [c["update_time"] for c in seen] == sorted(c["update_time"] for c in seen)
    assert len(client.search_cancellations(page_size=1).cancellations) == 1
    with pytest.raises(ValueError, match="page_size"):
        client.search_cancellations(page_size=51)
    # 202309 answers the closed state as CANCELLATION_REQUEST_CANCELLED; a filter may use either spelling
    closed = {c["cancel_id"] for c in everything if c["cancel_status"] == "CANCELLATION_REQUEST_CANCELLED"}
    assert closed
    for spelling in ("CANCELLATION_REQUEST_CANCEL", "CANCELLATION_REQUEST_CANCELLED"):
        found = {c["cancel_id"] for p in client.iter_cancellation_pages({"cancel_status": [spelling]})
                 for c in p.cancellations}
        assert found == closed


def test_a_returns_page_token_does_not_continue_a_cancellations_search(client):
    token = client.search_returns(page_size=10).next_page_token
    assert token
    with pytest.raises(errors.ParameterError, match="page_token"):
        client.search_cancellations(page_size=10, page_token=token)


def test_approve_and_reject_act_once_per_idempotency_key_with_tiktoks_reject_reasons(client, world):
    first = pending(world)
    client.approve_cancellation(first["cancel_id"], idempotency_key="approve-1")
    client.approve_cancellation(first["cancel_id"], idempotency_key="approve-1")  # a retry: the same answer
    with pytest.raises(errors.BusinessError) as refused:
        client.approve_cancellation(first["cancel_id"], idempotency_key="approve-2")
    assert refused.value.code == errors.ALREADY_DECIDED
    now = next(c for c in world.cancellations_for(shop_id(world)) if c["cancel_id"] == first["cancel_id"])
    assert now["cancel_status"] == "CANCELLATION_REQUEST_SUCCESS"
    assert [d["t"] for d in world._world.decision_log].count(world.now()) == 1

    second = pending(world)
    reasons = client.get_reject_reasons(second["cancel_id"])
    assert "seller_reject_apply_product_has_been_packed" in [r["name"] for r in reasons]
    with pytest.raises(errors.BusinessError) as bad:
        client.reject_cancellation(second["cancel_id"], "seller_reject_apply_tracking_shows_delivered",
                                   idempotency_key="reject-0")
    assert bad.value.code == errors.REASON_INVALID
    client.reject_cancellation(second["cancel_id"], reasons[0]["name"], idempotency_key="reject-1",
                               comment="Already packed")
    now = next(c for c in world.cancellations_for(shop_id(world)) if c["cancel_id"] == second["cancel_id"])
    assert now["cancel_status"] == "CANCELLATION_REQUEST_CANCELLED"
    answers = {a["decision"]: a for a in client.get_decision_eligibility(second["cancel_id"])}
    assert answers["APPROVE_REQUEST_CANCEL"]["eligible"] is False
    assert answers["REJECT_REQUEST_CANCEL"]["ineligible_code"] == errors.ALREADY_DECIDED


def test_a_restarted_sandbox_replays_the_sellers_answers(tmp_path, world_clock):
    state = tmp_path / "sandbox.json"
    one = Sandbox(**SETTINGS, wall_clock=world_clock, state_path=state)
    asked = pending(one)
    case = one._world.cancellation(asked["cancel_id"])
    from returns_core.tiktok.sandbox.cancellations import REJECT, REJECT_REASONS, CancelDecision
    one._world.decide(case, CancelDecision(REJECT, REJECT_REASONS[0][0]))
    one._save()
    two = Sandbox(**SETTINGS, wall_clock=world_clock, state_path=state)
    assert two.cancellations_for(shop_id(two)) == one.cancellations_for(shop_id(one))


# --- the sync -------------------------------------------------------------------------------------


def test_a_sync_stores_every_cancellation_exactly_beside_the_returns(db, world, linked):
    account, _ = linked
    result = sync_account(db, account, trigger="test", page_size=10)
    assert result.ok, result.error
    returns = len(world.returns_for(shop_id(world)))
    expected = truth(world)
    assert result.new == returns + len(expected)
    assert cancellations_view(db, shop_id(world)) == expected
    with db.reader() as con:
        kinds = dict(con.execute("SELECT kind, count(*) FROM returns GROUP BY kind").fetchall())
    assert kinds == {"return": returns, "cancellation": len(expected)}
    marks = watermark(db, shop_id(world)), watermark(db, shop_id(world), domain.CANCELLATION_KIND)
    assert marks == (max(r["update_time"] for r in world.returns_for(shop_id(world))),
                     max(c["update_time"] for c in world.cancellations_for(shop_id(world))))


def test_what_a_sync_read_is_counted_per_kind_in_its_result_progress_run_and_words(db, world, linked):
    account, _ = linked
    progress: list = []
    overall: list = []
    [result] = sync_accounts(db, [account], trigger="test", page_size=10, on_progress=progress.append,
                             on_overall=overall.append)
    returns, cancellations = len(world.returns_for(shop_id(world))), len(world.cancellations_for(shop_id(world)))
    assert (result.returns, result.cancellations) == (returns, cancellations)
    words = f"{returns} returns and {cancellations} cancellations"
    assert result.summary() == (f"{account.name}: {result.pages} page(s), {returns + cancellations} new, 0 updated, "
                                f"0 unchanged in {result.duration_s:.1f} s: {words}")
    # the progress counts each kind as its pages commit
    assert [p.cancellations for p in progress] == sorted(p.cancellations for p in progress)
    assert all(p.returns <= returns for p in progress) and (progress[-1].returns, progress[-1].cancellations) == (
        returns, cancellations)
    assert overall[-1].line() == f"1 of 1 shops, {words}"
    assert db.rows("SELECT new_count, cancellations_count FROM sync_runs") == [(returns + cancellations, cancellations)]
    [run] = sync_runs_page(db).to_dict("records")
    assert (run["Returns"], run["Cancellations"], run["New"]) == (returns, cancellations, returns + cancellations)
    # the next sync reads nothing new; a shop without cancellations reads "N returns" (tests/test_cli.py)
    again = sync_accounts(db, [account], trigger="test", page_size=10)[0]
    assert again.summary().endswith(f"s: {domain.count_in_words(again.returns, again.cancellations, str)}")


def test_the_next_sync_reads_only_the_cancellations_that_changed_and_deletes_none(db, world, linked, served):
    account, _ = linked
    sync_account(db, account, trigger="test", page_size=10)
    before = truth(world)
    asked = pending(world)  # moves the world on until a buyer asks
    requests = []
    answer = world.answer

    def counting(method, path, *args, **kwargs):
        requests.append(path)
        return answer(method, path, *args, **kwargs)

    world.answer = counting
    again = sync_account(db, account, trigger="test", page_size=10)
    assert again.ok, again.error
    assert requests.count(CANCEL_SEARCH) < len(before) // 10
    now = truth(world)
    assert cancellations_view(db, shop_id(world)) == now
    assert set(before) <= set(now) and asked["cancel_id"] in now
    with db.reader() as con:
        waiting = con.execute("SELECT count(*) FROM returns WHERE kind = 'cancellation' AND next_action = "
                              "'SELLER_RESPOND_CANCEL' AND due_by IS NOT NULL").fetchone()[0]
    assert waiting >= 1


def test_an_unknown_cancellation_status_is_kept_verbatim_flagged_and_keeps_the_last_status(db):
    obj = {"cancel_id": "5035000000000000001", "order_id": "58", "cancel_type": "BUYER_CANCEL",
           "cancel_status": "CANCELLATION_REQUEST_PENDING", "update_time": 1_790_000_000,
           "create_time": 1_790_000_000, "refund_amount": {"currency": "USD", "refund_total": "12.5"}}
    upsert_page(db, "S1", [obj], synced_at=utcnow(), kind=domain.CANCELLATION_KIND)
    later = {**obj, "cancel_status": "CANCELLATION_REQUEST_ON_HOLD", "update_time": 1_790_000_100}
    upsert_page(db, "S1", [later], synced_at=utcnow(), kind=domain.CANCELLATION_KIND)
    with db.reader() as con:
        row = con.execute("SELECT marketplace_status, status, unmapped, type, refund_total, payload FROM returns"
                          ).fetchone()
    assert row[:5] == ("CANCELLATION_REQUEST_ON_HOLD", "Requested", True, "Cancellation", Decimal("12.5"))
    assert json.loads(row[5]) == later
    # both spellings of the closed state map; neither is "unmapped"
    for spelling in ("CANCELLATION_REQUEST_CANCEL", "CANCELLATION_REQUEST_CANCELLED"):
        assert domain.mapped_status(spelling, domain.CANCELLATION_KIND) == domain.CANCELLED
    assert domain.is_unmapped("CANCELLATION_REQUEST_PENDING", domain.RETURN_KIND)


def test_a_cancellation_without_a_cancel_id_is_quarantined_not_skipped(db):
    counts = upsert_page(db, "S1", [{"cancel_status": "CANCELLATION_REQUEST_PENDING"}], synced_at=utcnow(),
                         kind=domain.CANCELLATION_KIND)
    assert counts.quarantined == 1
    with db.reader() as con:
        assert con.execute("SELECT reason FROM quarantined_returns").fetchone() == ("no cancel_id",)


def test_one_cancellation_is_re_read_on_demand(db, world, linked):
    account, _ = linked
    asked = pending(world)
    sync_cancellation(db, account, asked["cancel_id"])
    assert cancellations_view(db, shop_id(world))[asked["cancel_id"]][3] == "CANCELLATION_REQUEST_PENDING"


# --- faults ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference(world_clock, tmp_path_factory) -> dict:
    """The store after one clean sync of the same world (no faults)."""
    sandbox = Sandbox(**SETTINGS, wall_clock=world_clock)
    ref = Database(tmp_path_factory.mktemp("ref") / "ref.duckdb", key=None)
    with sandbox.serve(live=False) as server:
        account, _ = connect(ref, sandbox, server.url)
        assert sync_account(ref, account, trigger="test", page_size=10).ok
    return dump(ref)


def before_cancellation_request(world: Sandbox, n: int, action) -> None:
    """Do `action()` just before the sandbox answers its n-th Search Cancellations request."""
    count = itertools.count(1)
    take = world.faults.take

    def take_after(path: str):
        if path == CANCEL_SEARCH and next(count) == n:
            action()
        return take(path)

    world.faults.take = take_after


@pytest.mark.parametrize("kind", ["429", "500", "503", "reset", "truncate", "malformed"])
def test_a_burst_of_faults_on_the_cancellations_is_retried_and_the_sync_is_exact(db, world, linked, reference, kind):
    account, _ = linked
    before_cancellation_request(world, 3, lambda: world.faults.inject(kind, count=FAST_RETRY.max_attempts - 1))
    result = sync_account(db, account, trigger="test", page_size=10, retry=FAST_RETRY)
    assert result.ok, result.error
    assert world.faults.pending == 0, "the faults were never served: the test proved nothing"
    assert dump(db) == reference


def test_an_outage_in_the_cancellations_stops_readably_keeps_what_was_committed_and_the_next_sync_completes(
        db, world, linked, reference):
    account, _ = linked
    before_cancellation_request(world, 4, lambda: world.faults.inject("500", count=FAST_RETRY.max_attempts))
    failed = sync_account(db, account, trigger="test", page_size=10, retry=FAST_RETRY)
    assert not failed.ok and "server error" in failed.error.lower() and "\n" not in failed.error
    kept = cancellations_view(db, shop_id(world))
    assert len(kept) == 30  # three whole pages of 10, in update_time order
    mark = watermark(db, shop_id(world), domain.CANCELLATION_KIND)
    assert mark == max(v[-1]["update_time"] for v in kept.values())
    assert watermark(db, shop_id(world)) is not None  # the returns were all committed before
    again = sync_account(db, account, trigger="test", page_size=10, retry=FAST_RETRY)
    assert again.ok, again.error
    assert dump(db) == reference


# --- TikTok's contract ----------------------------------------------------------------------------


@needs_spec
@pytest.mark.parametrize(("spec", "version"), [("tiktok_return_refund.openapi.yaml", "202309"),
                                               ("tiktok_return_refund_newer.openapi.yaml", "202602")])
def test_every_cancellations_page_and_answer_conforms_to_tiktoks_contract(world, spec, version):
    contract = closed_contract(spec)
    http = httpx.Client(transport=world.transport(), base_url=SERVER)
    token = world.issue_tokens()["access_token"]

    def call(method: str, path: str, params: dict | None = None, body: dict | None = None) -> httpx.Response:
        raw = b"" if body is None else json.dumps(body).encode()
        query = {"app_key": SANDBOX_APP_KEY, "timestamp": str(int(world_clock_now(world))),
                 "shop_cipher": world.shops[0]["cipher"], **(params or {})}
        query["sign"] = sign(path, query, raw, SANDBOX_APP_SECRET)
        return http.request(method, path, params=query, content=raw,
                            headers={"x-tts-access-token": token, "content-type": "application/json"})

    search = f"/return_refund/{version}/cancellations/search"
    statuses, page_token, seen = set(), "", 0
    while True:
        params = {"page_size": "20", "sort_field": "update_time", **({"page_token": page_token} if page_token else {})}
        data = conforms(contract, "POST", search, call("POST", search, params, {}))["data"]
        for c in data["cancellations"]:
            statuses.add(c["cancel_status"])
            assert domain.mapped_status(c["cancel_status"], domain.CANCELLATION_KIND) is not None
        seen += len(data["cancellations"])
        page_token = data["next_page_token"]
        if not page_token:
            break
    assert seen == data["total_count"] >= 80
    closed = "CANCELLATION_REQUEST_CANCELLED" if version == "202309" else "CANCELLATION_REQUEST_CANCEL"
    assert closed in statuses
    empty = conforms(contract, "POST", search, call("POST", search, {}, {"cancel_ids": ["1"]}))["data"]
    assert empty["total_count"] == 0 and "cancellations" not in empty
    refused = call("POST", search, {"page_size": "51"}, {})
    assert conforms(contract, "POST", search, refused)["code"] == errors.INVALID_PARAMETER
    waiting = pending(world)["cancel_id"]
    reasons = "/return_refund/202309/reject_reasons"
    answer = conforms(contract, "GET", reasons, call("GET", reasons, {"return_or_cancel_id": waiting}))
    assert answer["data"]["reasons"][0]["name"] == "seller_reject_apply_product_has_been_packed"
    if version == "202602":  # Get Decision Eligibility is in the newer contract only
        eligibility = "/return_refund/202601/decision_eligibility"
        answer = conforms(contract, "GET", eligibility, call("GET", eligibility, {"return_or_cancel_id": waiting}))
        eligible = {d["decision"] for d in answer["data"]["decisions"] if d["eligible"]}
        assert eligible == {"APPROVE_REQUEST_CANCEL", "REJECT_REQUEST_CANCEL"}
    if version == "202309":
        asked = pending(world)
        approve = f"/return_refund/202309/cancellations/{asked['cancel_id']}/approve"
        assert conforms(contract, "POST", approve, call("POST", approve, {"idempotency_key": "k1"}))["code"] == 0
        again = call("POST", approve, {"idempotency_key": "k2"})
        assert conforms(contract, "POST", approve, again)["code"] == errors.ALREADY_DECIDED
        reject = f"/return_refund/202309/cancellations/{pending(world)['cancel_id']}/reject"
        answer = call("POST", reject, {}, {"reject_reason": "seller_reject_apply_product_has_been_packed"})
        assert conforms(contract, "POST", reject, answer)["code"] == 0


def world_clock_now(world: Sandbox) -> float:
    return world._wall()


# --- the grid, the filters, the deadlines, the exports ----------------------------------------------


@pytest.fixture
def synced(db, world, linked):
    """The shop synced once, with a cancellation waiting for the seller."""
    account, _ = linked
    asked = pending(world)
    assert sync_account(db, account, trigger="test", page_size=50).ok
    return account, asked


def test_the_grid_filters_counts_and_exports_cancellations_as_their_own_type(db, world, synced, tmp_path):
    from returns_core.filters import ReturnFilters
    from returns_core.store import returns as store

    _, asked = synced
    only = ReturnFilters(types=(domain.CANCELLATION,))
    total = len(world.cancellations_for(shop_id(world)))
    assert store.count_returns(db, only) == total
    page = store.grid_page(db, only, limit=500)
    assert set(page["Type"]) == {"Cancellation"} and len(page) == total
    assert set(page["Marketplace Status"]) <= set(domain.CANCELLATION_STATUS_MAP)
    row = page[page["Marketplace Return ID"] == asked["cancel_id"]].iloc[0]
    assert row["Status"] == "Requested" and bool(row[store.CAN_DECIDE])
    assert store.count_returns(db, ReturnFilters(types=domain.TYPES)) == len(world.returns_for(shop_id(world)))
    # "Waiting for you" and the deadlines: a waiting cancellation is counted by its own window's deadline,
    # which is days away when the shop answers "before ready-to-ship". Counted at the sandbox's time:
    # finding a waiting cancellation may have moved it many hours on.
    world_now = datetime.fromtimestamp(world.now(), UTC).replace(tzinfo=None)
    waiting = store.grid_page(db, ReturnFilters(waiting=True, types=(domain.CANCELLATION,)), limit=500)
    assert len(waiting) >= 1 and waiting["Due By"].notna().all()
    states = [domain.deadline_state(status, due_by, world_now) for status, due_by in
              zip(waiting["Status"], waiting["Due By"], strict=True)]
    due, overdue = store.deadline_counts(db, (), (domain.CANCELLATION,), world_now)
    assert (due, overdue) == (states.count(domain.DUE_SOON), states.count(domain.OVERDUE))
    assert store.deadline_counts(db, (), (domain.CANCELLATION,), max(waiting["Due By"]) + timedelta(minutes=1)) == (
        0, len(waiting))  # a minute past the last deadline, every waiting cancellation is overdue
    assert "CANCELLATION_REQUEST_CANCELLED" in store.marketplace_status_options(db)
    out = tmp_path / "cancellations.csv"
    assert store.export_returns(db, only, out) == total
    import csv
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert {r["Type"] for r in rows} == {"Cancellation"}
    assert {r["Marketplace Status"] for r in rows} <= set(domain.CANCELLATION_STATUS_MAP)


def test_the_command_line_exports_only_the_cancellations(db, synced, tmp_path):
    from returns_core.cli import main

    out = tmp_path / "c.csv"
    assert main(["--db", str(db.path), "export", "--out", str(out), "--type", "cancellation"]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) > 1 and all(",Cancellation," in line for line in lines[1:])


# --- decisions: the same path as a return's -------------------------------------------------------


def test_a_cancellation_is_rejected_with_tiktoks_reason_once_and_its_new_status_is_synced(db, world, synced):
    from returns_core import workflow

    account, asked = synced
    options = workflow.decision_options(db, account, asked["cancel_id"])
    assert options.asked_tiktok and options.approve == ("APPROVE_REQUEST_CANCEL",)
    assert options.reject == ("REJECT_REQUEST_CANCEL",)
    reasons = options.reject_reasons["REJECT_REQUEST_CANCEL"]
    assert reasons[0]["name"] == "seller_reject_apply_product_has_been_packed"
    with pytest.raises(workflow.WorkflowError, match="reject reason"):
        workflow.plan_action(db, account.shop_id, asked["cancel_id"], "REJECT_REQUEST_CANCEL", options=options)
    plan = workflow.plan_action(db, account.shop_id, asked["cancel_id"], "REJECT_REQUEST_CANCEL",
                                reject_reason=reasons[0]["name"], comment="Packed already", options=options)
    assert plan.request["path"] == f"/return_refund/202309/cancellations/{asked['cancel_id']}/reject"
    assert plan.request["body"] == {"reject_reason": reasons[0]["name"], "comment": "Packed already"}
    assert "ships" in plan.summary
    result = workflow.send_action(db, account, plan, "Mia")
    assert result.ok, result.message
    assert (result.marketplace_status, result.status) == ("CANCELLATION_REQUEST_CANCELLED", domain.CANCELLED)
    again = workflow.send_action(db, account, plan, "Mia")  # a double click: nothing is sent twice
    assert again.ok and again.repeated
    decided = [d for d in world._world.decision_log if d.get("cancel_id") == asked["cancel_id"]]
    assert len(decided) == 1 and decided[0]["reject_reason"] == reasons[0]["name"]
    with db.reader() as con:
        history = con.execute("SELECT kind, new_value FROM history WHERE return_id = ? ORDER BY id",
                              [asked["cancel_id"]]).fetchall()
    assert ("action", "REJECT_REQUEST_CANCEL: ok") in history
    assert ("marketplace_status", "CANCELLATION_REQUEST_CANCELLED") in history


def test_approving_a_cancellation_sends_no_body_and_a_refusal_is_told_in_words(db, world, synced):
    from returns_core import workflow

    account, asked = synced
    plan = workflow.plan_action(db, account.shop_id, asked["cancel_id"], "APPROVE_REQUEST_CANCEL")
    assert plan.request["body"] is None and plan.request["path"].endswith("/approve")
    # TikTok decides first (the window passed): the seller's answer comes too late and is refused
    world.advance(max(0, asked["seller_next_action_response"][0]["deadline"] - world.now()) + 60)
    late = workflow.send_action(db, account, plan, "Mia")
    assert not late.ok and "already decided" in late.message and str(errors.ALREADY_DECIDED) in late.message


def test_an_approved_cancellation_is_not_in_the_review_queue_of_accepted_returns(db):
    from returns_core import review

    accepted = {"cancel_id": "5035000000000000002", "cancel_type": "BUYER_CANCEL",
                "cancel_status": "CANCELLATION_REQUEST_SUCCESS", "update_time": 1_790_000_000}
    returned = {"return_id": "4035000000000000002", "return_type": "REFUND",
                "return_status": "RETURN_OR_REFUND_REQUEST_SUCCESS", "update_time": 1_790_000_000}
    upsert_page(db, "S1", [accepted], synced_at=utcnow(), kind=domain.CANCELLATION_KIND)
    upsert_page(db, "S1", [returned], synced_at=utcnow())
    with db.reader() as con:
        assert con.execute("SELECT count(*) FROM returns WHERE status = 'Accepted'").fetchone()[0] == 2
    assert list(review.queue_page(db, review.queue_filters())["Marketplace Return ID"]) == [returned["return_id"]]


def test_an_answer_whose_reply_is_lost_is_retried_with_its_key_and_applied_once(client, world):
    asked = pending(world)
    # the sandbox approves, then the connection drops before the answer: the client retries the same key
    world.faults.inject("reset", count=1, path_prefix=f"/return_refund/202309/cancellations/{asked['cancel_id']}")
    client.approve_cancellation(asked["cancel_id"], idempotency_key="lost-reply")
    assert world.faults.pending == 0
    applied = [d for d in world._world.decision_log if d.get("cancel_id") == asked["cancel_id"]]
    assert len(applied) == 1 and applied[0]["name"] == "APPROVE_REQUEST_CANCEL"


def test_approving_a_return_and_a_cancellation_together_sends_each_to_its_own_endpoint(db, world, synced):
    from returns_core import workflow
    from returns_core.filters import ReturnFilters
    from returns_core.store import returns as store

    account, _ = synced
    # a return and a cancellation both waiting for the seller: at some hours no return waits in this small
    # world, so it moves on an hour at a time, synced each time, until both do (bounded)
    for _ in range(24 * 14):
        waiting_return = store.grid_page(db, ReturnFilters(waiting=True, types=domain.TYPES), limit=1)
        waiting_cancel = store.grid_page(db, ReturnFilters(waiting=True, types=(domain.CANCELLATION,)), limit=1)
        if not waiting_return.empty and not waiting_cancel.empty:
            break
        world.advance(HOUR)
        assert sync_account(db, account, trigger="test", page_size=50).ok
    else:
        raise AssertionError("no return and cancellation waited together in 14 days of the sandbox")
    cancel_id = waiting_cancel["Marketplace Return ID"][0]
    keys = [(account.shop_id, waiting_return["Marketplace Return ID"][0]), (account.shop_id, cancel_id)]
    bulk = workflow.plan_bulk(db, keys, workflow.APPROVE)
    paths = sorted(plan.request["path"].split("/")[3] for plan in bulk.plans)
    assert paths == ["cancellations", "returns"]
    outcomes = workflow.send_bulk(db, {account.shop_id: account}, bulk, "Mia")
    assert all(o.ok for o in outcomes), [o.message for o in outcomes]
    assert workflow.bulk_summary(workflow.APPROVE, outcomes) == "Approved 2 of 2."
    row = store.find_return(db, cancel_id, account.shop_id)
    assert row["marketplace_status"] == "CANCELLATION_REQUEST_SUCCESS" and row["status"] == domain.ACCEPTED


def test_a_deadline_alert_names_a_cancellation_as_one(db):
    from returns_core import alerts
    from returns_core.store import alerts as alert_store

    now = utcnow()
    soon = {"cancel_id": "5035000000000000003", "cancel_type": "BUYER_CANCEL",
            "cancel_status": "CANCELLATION_REQUEST_PENDING", "update_time": int(now.timestamp()) - 60,
            "seller_next_action_response": [{"action": "SELLER_RESPOND_CANCEL",
                                             "deadline": int(now.timestamp()) + 2 * HOUR}]}
    upsert_page(db, "S1", [soon], synced_at=now, kind=domain.CANCELLATION_KIND)
    rows = alert_store.due_within(db, now, 24)
    assert [r["return_id"] for r in rows] == [soon["cancel_id"]]
    found = alerts._deadline_alerts(alerts.Context(db, now, "http://desk", {}), rows, alerts.DUE_SOON)
    assert found[0].title.startswith(f"Cancellation {soon['cancel_id']}")
    assert "Open the cancellation:" in found[0].message


def test_the_command_line_says_how_many_returns_and_cancellations_it_read(db, db_key, world, linked, capsys,
                                                                          monkeypatch):
    from returns_core.cli import main

    account, _ = linked
    monkeypatch.setenv("RETURNS_DESK_KEY", db_key)
    assert main(["--db", str(db.path), "sync"]) == 0
    out, err = capsys.readouterr()
    returns, cancellations = len(world.returns_for(shop_id(world))), len(world.cancellations_for(shop_id(world)))
    # stdout keeps its start (DESIGN.md's contract: scripts read "NAME: N page(s), N new, ..."), then the kinds
    assert re.fullmatch(rf"{re.escape(account.name)}: \d+ page\(s\), {returns + cancellations} new, 0 updated, "
                        rf"0 unchanged in [\d.]+ s: {returns} returns and {cancellations} cancellations\n", out), out
    assert f"{returns + cancellations} read: {returns} returns and {cancellations} cancellations (" in err
