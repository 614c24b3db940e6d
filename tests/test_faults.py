"""Faults during a sync, over real HTTP on 127.0.0.1 against the served sandbox.

For every fault TikTok (or the network) can throw at us, a sync either completes, or stops with
a readable one-line reason while the store keeps every page it committed; then the next sync
completes and the store equals a reference store synced without faults, exactly: every column
of returns, line items, history and the watermark (bar the columns saying *when* we synced).
"""

from __future__ import annotations

import itertools

import pytest

from returns_core import accounts as acc
from returns_core.store.db import Database
from returns_core.sync import sync_account
from returns_core.tiktok import errors
from returns_core.tiktok.client import AuthClient, TikTokClient
from returns_core.tiktok.sandbox import SANDBOX_APP_KEY, SANDBOX_APP_SECRET, Sandbox
from returns_core.tiktok.sandbox.faults import Fault
from tests.reliability import FAST_RETRY, connect, dump, duplicates, steady_clock

RETURNS = 160  # 1 shop: 4 pages of 50 (the last one short)
SETTINGS = {"seed": 7, "shops": 1, "returns": RETURNS}
# A "timeout" fault holds its answer back HELD_BACK_S, well past the client's timeout; every other answer
# must come within the timeout even on a busy machine, so it is not cut close
CLIENT_TIMEOUT = 1.0
HELD_BACK_S = 3.0


@pytest.fixture(scope="module")
def world_clock():
    """One frozen world time for the module: every sandbox here holds the same returns."""
    return steady_clock()


@pytest.fixture(scope="module")
def reference(world_clock, tmp_path_factory) -> dict:
    """The store after one clean sync (no faults) of the same world."""
    sandbox = Sandbox(**SETTINGS, wall_clock=world_clock)
    db = Database(tmp_path_factory.mktemp("reference") / "ref.duckdb", key=None)
    with sandbox.serve() as server:
        account, _ = connect(db, sandbox, server.url)
        result = sync_account(db, account, trigger="test")
    assert result.ok, result.error
    content = dump(db)
    assert len(content["returns"]) >= RETURNS and len(content["return_line_items"]) >= RETURNS
    return content


@pytest.fixture
def world(make_sandbox, world_clock) -> Sandbox:
    return make_sandbox(**SETTINGS, wall_clock=world_clock)


@pytest.fixture
def served(world):
    with world.serve() as server:
        yield server


@pytest.fixture
def linked(db, world, served):
    """(account, tokens) of the sandbox shop connected in `db` over HTTP."""
    return connect(db, world, served.url)


def before_request(world: Sandbox, n: int, action) -> None:
    """Do `action()` (inject a fault, expire or revoke a token) just before the sandbox answers its
    n-th Search Returns request: after exactly n - 1 pages, however far the sync reads ahead."""
    requests = itertools.count(1)
    take = world.faults.take

    def take_after(path: str):
        if path.startswith("/return_refund/") and next(requests) == n:
            action()
        return take(path)

    world.faults.take = take_after


def assert_one_readable_line(text: str | None, *phrases: str) -> None:
    assert text, "a failed sync must say why"
    assert "\n" not in text and "Traceback" not in text and len(text) < 400, text
    for phrase in phrases:
        assert phrase.lower() in text.lower(), f"{phrase!r} not in {text!r}"


def assert_partial_store_is_a_prefix_of_the_clean_one(db: Database, reference: dict, pages: int) -> None:
    """What a stopped sync left behind: whole pages, each row as the clean sync stores it, no gap."""
    now = dump(db)
    assert len(now["returns"]) == 50 * pages
    assert set(now["returns"]) <= set(reference["returns"])
    assert set(now["return_line_items"]) <= set(reference["return_line_items"])
    assert all(v == 0 for v in duplicates(db).values())
    if not pages:
        assert now["sync_state"] == []
        return
    # the watermark is the newest update_time committed, and nothing older was skipped
    with db.reader() as con:
        newest = con.execute("SELECT epoch(max(updated_at))::BIGINT FROM returns").fetchone()[0]
        watermark = con.execute("SELECT watermark FROM sync_state").fetchone()[0]
    assert watermark == newest
    ref_ids_before = {r[1] for r in reference["returns"]}  # (shop_id, return_id, ...) rows
    with db.reader() as con:
        stored = {r[0] for r in con.execute("SELECT return_id FROM returns").fetchall()}
        older = {r[0] for r in con.execute(
            "SELECT return_id FROM returns WHERE epoch(updated_at) < ?", [watermark]).fetchall()}
    assert older <= stored <= ref_ids_before


def last_run(db: Database) -> tuple:
    with db.reader() as con:
        return con.execute("SELECT state, error FROM sync_runs ORDER BY id DESC LIMIT 1").fetchone()


def resume_and_compare(db: Database, account, reference: dict) -> None:
    """The next sync, without faults, completes and the store equals the clean one exactly."""
    again = sync_account(db, acc.get_account(db, account.shop_id), trigger="test", retry=FAST_RETRY)
    assert again.ok, again.error
    assert dump(db) == reference
    assert last_run(db) == ("ok", None)


# --- faults the retries absorb: the sync completes ------------------------------------------------

ABSORBED = ["429", "500", "503", "timeout", "reset", "truncate", "malformed"]


@pytest.mark.parametrize("kind", ABSORBED)
def test_a_short_burst_mid_sync_is_retried_and_the_sync_completes_exactly(db, world, linked, reference, kind):
    account, _ = linked
    # the request for page 3 gets `kind` twice (of 3 attempts)
    before_request(world, 3, lambda: world.faults.inject(kind, count=FAST_RETRY.max_attempts - 1, delay=HELD_BACK_S))
    result = sync_account(db, account, trigger="test", retry=FAST_RETRY, timeout=CLIENT_TIMEOUT)
    assert result.ok, result.error
    assert world.faults.pending == 0, "the faults were never served: the test proved nothing"
    assert dump(db) == reference
    assert acc.get_account(db, account.shop_id).status == acc.ACTIVE


def test_429_honours_retry_after(db, world, linked, reference):
    account, _ = linked
    slept: list[float] = []
    before_request(world, 2, lambda: world.faults.inject("429", count=2, retry_after=0.04))
    result = sync_account(db, account, trigger="test", retry=FAST_RETRY, sleep=slept.append)
    assert result.ok, result.error
    assert slept == [0.04, 0.04]
    assert dump(db) == reference


def test_every_other_request_failing_a_different_way_still_syncs_exactly(db, world, linked, reference, monkeypatch):
    account, _ = linked
    kinds = itertools.cycle(["timeout", "500", "429", "reset", "truncate", "503", "malformed"])
    requests = itertools.count()
    served: list[str] = []
    take = world.faults.take

    def every_other(path: str) -> Fault | None:
        # the returns' pages (the sync then asks for cancellations too: none in this world, one empty page)
        if path.startswith("/return_refund/202309/returns/") and next(requests) % 2 == 0:
            served.append(next(kinds))
            return Fault(served[-1], 1, None, HELD_BACK_S, None)
        return take(path)

    monkeypatch.setattr(world.faults, "take", every_other)
    result = sync_account(db, account, trigger="test", retry=FAST_RETRY, timeout=CLIENT_TIMEOUT)
    assert result.ok, result.error
    assert len(served) == result.pages >= 4
    assert dump(db) == reference


# --- faults that outlast the retries: the sync stops, readably, keeping its pages -----------------

STOPPING = [
    ("429", "too many requests"),
    ("500", "server error"),
    ("503", "server error"),
    ("timeout", "cannot reach tiktok"),
    ("reset", "cannot reach tiktok"),
    ("truncate", "unreadable"),
    ("malformed", "unreadable"),
]


@pytest.mark.parametrize(("kind", "says"), STOPPING, ids=[k for k, _ in STOPPING])
def test_a_fault_that_outlasts_the_retries_stops_readably_then_the_next_sync_completes(
        db, world, linked, reference, kind, says):
    account, _ = linked
    before_request(world, 3, lambda: world.faults.inject(kind, count=FAST_RETRY.max_attempts, delay=HELD_BACK_S))
    failed = sync_account(db, account, trigger="test", retry=FAST_RETRY, timeout=CLIENT_TIMEOUT)
    assert not failed.ok
    assert world.faults.pending == 0
    assert_one_readable_line(failed.error, says)
    assert failed.pages == 2  # the pages before the outage are committed, however they were batched
    assert last_run(db) == ("failed", failed.error)
    assert_partial_store_is_a_prefix_of_the_clean_one(db, reference, failed.pages)
    # a network or server problem is not the shop's fault: the account stays Active
    assert acc.get_account(db, account.shop_id).status == acc.ACTIVE
    resume_and_compare(db, account, reference)


def test_an_outage_before_the_first_page_stores_nothing_then_the_next_sync_completes(db, world, linked, reference):
    account, _ = linked
    world.faults.inject("503", count=FAST_RETRY.max_attempts)
    failed = sync_account(db, account, trigger="test", retry=FAST_RETRY)
    assert_one_readable_line(failed.error, "server error")
    assert failed.pages == 0
    assert_partial_store_is_a_prefix_of_the_clean_one(db, reference, 0)
    resume_and_compare(db, account, reference)


# --- tokens ---------------------------------------------------------------------------------------


def stored_tokens(db: Database, shop_id: str) -> tuple[str, str]:
    with db.reader() as con:
        row = con.execute("SELECT access_token_enc, refresh_token_enc FROM accounts WHERE shop_id = ?",
                          [shop_id]).fetchone()
    return db.box.decrypt(row[0]), db.box.decrypt(row[1])


@pytest.mark.parametrize("how", ["expired on the sandbox", "105002 answered"])
def test_a_token_expiring_mid_sync_is_refreshed_the_sync_continues_and_new_tokens_are_kept(
        db, world, served, linked, reference, how):
    account, tokens = linked
    if how == "expired on the sandbox":
        before_request(world, 3, lambda: world.expire_access_token(tokens.access_token))
    else:
        before_request(world, 3, lambda: world.faults.inject("expire_token", count=1))
    result = sync_account(db, account, trigger="test", retry=FAST_RETRY)
    assert result.ok, result.error
    assert dump(db) == reference

    access, refresh = stored_tokens(db, account.shop_id)
    assert access != tokens.access_token and refresh != tokens.refresh_token, "the new tokens were not persisted"
    # TikTok rotates the refresh token: the old one is spent, so only the persisted one can work
    with AuthClient(SANDBOX_APP_KEY, SANDBOX_APP_SECRET, auth_base=served.url, retry=FAST_RETRY) as auth, \
            pytest.raises(errors.RefreshTokenInvalidError):
        auth.refresh(tokens.refresh_token)
    with TikTokClient(SANDBOX_APP_KEY, SANDBOX_APP_SECRET, access, refresh, api_base=served.url,
                      auth_base=served.url, retry=FAST_RETRY) as client:
        assert client.get_authorized_shops()[0]["id"] == account.shop_id
    assert acc.get_account(db, account.shop_id).status == acc.ACTIVE

    # and the persisted refresh token carries the next expiry too
    world.expire_access_token(access)
    again = sync_account(db, account, trigger="test", retry=FAST_RETRY)
    assert again.ok, again.error
    assert stored_tokens(db, account.shop_id)[1] not in (refresh, tokens.refresh_token)
    assert dump(db) == reference


def test_a_token_revoked_mid_sync_marks_the_account_invalid_with_a_clear_message(db, world, served, linked, reference):
    account, tokens = linked
    before_request(world, 3, lambda: world.revoke(tokens.access_token))
    failed = sync_account(db, account, trigger="test", retry=FAST_RETRY)
    assert_one_readable_line(failed.error, "reconnect")
    assert failed.pages == 2
    assert_partial_store_is_a_prefix_of_the_clean_one(db, reference, failed.pages)
    after = acc.get_account(db, account.shop_id)
    assert after.status == acc.INVALID
    assert_one_readable_line(after.auth_error, "reconnect")
    assert last_run(db) == ("failed", failed.error)

    # syncing again without reconnecting fails the same clear way and changes nothing
    before = dump(db)
    again = sync_account(db, after, trigger="test", retry=FAST_RETRY)
    assert_one_readable_line(again.error, "reconnect")
    assert dump(db) == before

    # the seller authorizes again: reconnecting clears Invalid and the next sync completes exactly
    reconnected, _ = connect(db, world, served.url)
    assert reconnected.shop_id == account.shop_id and reconnected.status == acc.ACTIVE
    resume_and_compare(db, reconnected, reference)
