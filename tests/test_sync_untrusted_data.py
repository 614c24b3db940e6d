"""What TikTok sends is not trusted blindly, over real HTTP against the served sandbox.

- A return dated in the future (update_time in 2100) is stored and flagged, but never moves the
  watermark past now + ingest.FUTURE_MARGIN_S: later changes still sync. `--full` derives the
  watermark again from what it reads, even backwards; an incremental sync that finds a watermark from
  the future (left by an older version) reads everything once and does the same.
- An object without a return_id is kept as a quarantined raw row in the transaction of its page and
  reported in the sync's outcome: never skipped silently, never passed by the watermark unkept.

`TikTokSays` edits Search Returns answers on their way out of the sandbox, so the client, the sync
and the store see them exactly as they would come from TikTok.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest

from returns_core import cli, ingest
from returns_core import sample_data as sample
from returns_core.store import sync_runs
from returns_core.store.db import utcnow
from returns_core.store.quarantine import quarantined
from returns_core.store.sync_runs import watermark
from returns_core.sync import sync_account
from returns_core.tiktok_session import tiktok_session
from tests.apptest import open_app
from tests.reliability import connect, steady_clock, stored_payloads, truth_payloads, update_times

YEAR_2100 = 4102444800  # 2100-01-01 00:00 UTC


class TikTokSays:
    """The sandbox answers Search Returns as always, then `change(return_orders)` edits each page
    before it goes out over HTTP (what TikTok itself might have sent). `served` is every object sent."""

    def __init__(self, sandbox, change: Callable[[list], list]):
        self._answer, self._change = sandbox.answer, change
        self.served: list = []
        sandbox.answer = self._edited  # the HTTP server asks the instance, so this takes effect at once

    def _edited(self, method, path, *args, **kwargs):
        response = self._answer(method, path, *args, **kwargs)
        if path.endswith("/returns/search") and response.status == 200:
            envelope = json.loads(response.body)
            data = envelope.get("data") or {}
            if data.get("return_orders"):
                data["return_orders"] = self._change(data["return_orders"])
                self.served.extend(data["return_orders"])
                response.body = json.dumps(envelope, separators=(",", ":")).encode()
        return response


@pytest.fixture
def world(make_sandbox):
    """One shop with 120 returns (3 pages), world frozen, served over HTTP: (sandbox, server)."""
    sandbox = make_sandbox(shops=1, returns=120, wall_clock=steady_clock())
    with sandbox.serve() as server:
        yield sandbox, server


def newest_first(sandbox, shop_id: str) -> list[dict]:
    return sorted(sandbox.returns_for(shop_id), key=lambda o: o["update_time"], reverse=True)


def stored_status(db, shop_id: str, return_id: str) -> tuple:
    with db.reader() as con:
        return con.execute("SELECT marketplace_status, updated_at FROM returns WHERE shop_id = ? AND return_id = ?",
                           [shop_id, return_id]).fetchone()


# --- a return from the future ---------------------------------------------------------------------


def test_a_return_dated_2100_is_flagged_and_later_changes_still_sync(db, world):
    sandbox, server = world
    account, _ = connect(db, sandbox, server.url)
    truth = newest_first(sandbox, account.shop_id)
    future = truth[0]["return_id"]  # TikTok serves it last (update_time order), dated 2100
    TikTokSays(sandbox, lambda orders: [{**o, "update_time": YEAR_2100} if o["return_id"] == future else o
                                        for o in orders])

    first = sync_account(db, account, trigger="test")
    assert first.ok, first.error
    assert first.new == len(truth)
    assert stored_status(db, account.shop_id, future)[1] == ingest.to_utc(YEAR_2100)  # kept as TikTok sent it
    mark = watermark(db, account.shop_id)
    assert mark == truth[1]["update_time"], "the watermark is the newest update_time that is not from the future"
    assert ingest.to_utc(mark) <= utcnow() + timedelta(seconds=ingest.FUTURE_MARGIN_S)
    assert first.from_future == 1 and "1 return dated in the future by TikTok" in first.summary()

    # TikTok moves a return now: the seller approves a pending refund
    pending = next(o for o in truth if o["return_type"] == "REFUND" and o["return_id"] != future
                   and o["return_status"] == "RETURN_OR_REFUND_REQUEST_PENDING")
    with tiktok_session(db, account) as client:
        client.approve_return(pending["return_id"], "APPROVE_REFUND", idempotency_key=str(uuid.uuid4()))
    moved = next(o for o in sandbox.returns_for(account.shop_id) if o["return_id"] == pending["return_id"])
    assert moved["return_status"] != pending["return_status"]

    second = sync_account(db, account, trigger="test")
    assert second.ok, second.error
    assert second.updated >= 1 and second.fetched < len(truth), "an incremental sync, not a full re-read"
    assert stored_status(db, account.shop_id, pending["return_id"]) == (moved["return_status"],
                                                                         ingest.to_utc(moved["update_time"]))
    assert second.from_future == 1  # read again, and flagged again, on every sync until TikTok fixes it


def test_sync_full_derives_the_watermark_again_even_backwards(db, db_key, world, monkeypatch, capsys):
    sandbox, server = world
    account, _ = connect(db, sandbox, server.url)
    assert sync_account(db, account, trigger="test").ok
    newest = max(update_times(truth_payloads(sandbox, account.shop_id)).values())
    assert watermark(db, account.shop_id) == newest
    with db.writer() as con:  # what a sync before this fix left after a return dated 2100
        sync_runs.advance_watermark(con, account.shop_id, YEAR_2100, utcnow())
    assert watermark(db, account.shop_id) == YEAR_2100

    monkeypatch.setenv("RETURNS_DESK_KEY", db_key)
    assert cli.main(["--db", str(db.path), "sync", "--full"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{account.name}: 3 page(s), 0 new, 0 updated, 120 unchanged"), out
    assert watermark(db, account.shop_id) == newest


def test_an_incremental_sync_repairs_a_watermark_from_the_future_by_reading_everything_once(db, world):
    sandbox, server = world
    account, _ = connect(db, sandbox, server.url)
    assert sync_account(db, account, trigger="test").ok
    newest = watermark(db, account.shop_id)
    with db.writer() as con:  # the demo shop's case: the clock was ahead during a sync, then set right
        sync_runs.advance_watermark(con, account.shop_id, YEAR_2100, utcnow())

    repaired = sync_account(db, account, trigger="test")
    assert repaired.ok and not repaired.full
    assert repaired.fetched == len(truth_payloads(sandbox, account.shop_id))
    assert watermark(db, account.shop_id) == newest
    assert repaired.watermark_repaired and "the watermark was in the future" in repaired.summary()

    after = sync_account(db, account, trigger="test")  # back to incremental
    assert after.ok and not after.watermark_repaired and after.fetched < repaired.fetched


def test_the_detail_page_flags_a_return_from_the_future(app_db):
    sample.add_account(app_db, "7000000001", "Alpha Shop")
    done = {"return_status": "RETURN_OR_REFUND_REQUEST_COMPLETE", "created": utcnow() - timedelta(days=1)}
    sample.write_returns(app_db, "7000000001", [sample.tiktok_return("R-FUTURE", updated=YEAR_2100, **done),
                                                sample.tiktok_return("R-NOW", updated=utcnow(), **done)])
    flagged = open_app("app_pages/detail.py", id="R-FUTURE")
    notes = [w.value for w in flagged.warning if "From the future" in w.value]
    assert len(notes) == 1 and "2100" in notes[0] and "check this computer's clock" in notes[0]
    normal = open_app("app_pages/detail.py", id="R-NOW")
    assert not [w for w in normal.warning if "From the future" in w.value]


# --- an object without a return_id --------------------------------------------------------------------


def test_an_object_without_return_id_is_quarantined_and_reported_never_skipped(db, db_key, world, monkeypatch,
                                                                                capsys):
    sandbox, server = world
    account, _ = connect(db, sandbox, server.url)
    truth = newest_first(sandbox, account.shop_id)
    broken = truth[len(truth) // 2]["return_id"]  # on the middle page: later pages follow it

    def drop_return_id(orders: list) -> list:
        return [{k: v for k, v in o.items() if k != "return_id"} if o.get("return_id") == broken else o
                for o in orders]

    tiktok = TikTokSays(sandbox, drop_return_id)
    monkeypatch.setenv("RETURNS_DESK_KEY", db_key)
    assert cli.main(["--db", str(db.path), "sync"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{account.name}: 3 page(s), 119 new,"), out
    assert "1 object from TikTok without a return_id: not synced, kept aside in quarantined_returns" in out

    # every object TikTok sent is kept: as a return, or as it came in quarantine
    kept = quarantined(db, account.shop_id)
    assert [(q.reason, json.loads(q.payload), q.times_seen) for q in kept] == [
        ("no return_id", next(o for o in tiktok.served if "return_id" not in o), 1)]
    stored = stored_payloads(db, account.shop_id)
    assert len(stored) + len(kept) == len(tiktok.served) == len(truth)
    assert set(stored) == {o["return_id"] for o in truth} - {broken}
    # the watermark passed it only together with keeping it, in one transaction per page
    assert kept[0].update_time <= watermark(db, account.shop_id)

    # read again (the sync's overlap, a full sync): counted, not kept twice
    again = sync_account(db, account, full=True, trigger="test")
    assert again.ok and again.quarantined == 1
    assert [q.times_seen for q in quarantined(db, account.shop_id)] == [2]


def test_an_item_that_is_not_an_object_is_quarantined_too(db, world):
    sandbox, server = world
    account, _ = connect(db, sandbox, server.url)
    TikTokSays(sandbox, lambda orders: [*orders[:-1], "garbled", orders[-1]] if len(orders) < 50 else orders)
    result = sync_account(db, account, trigger="test")
    assert result.ok and result.new == 120
    assert [(q.reason, q.payload) for q in quarantined(db, account.shop_id)] == [
        ("not a return object (a JSON str)", '"garbled"')]
    assert result.quarantined == 1
