"""ingest: TikTok return objects become rows, and a page is upserted in one transaction."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet

from returns_core import sample_data as sample
from returns_core.filters import ReturnFilters
from returns_core.ingest import PageCounts, line_item_rows, return_row
from returns_core.store import return_writes, sync_runs
from returns_core.store.db import Database, utcnow
from returns_core.store.return_writes import upsert_page
from returns_core.store.returns import count_returns
from returns_core.store.schema import MIGRATIONS
from returns_core.workflow import change_status
from tests.reliability import version_1_store

SHOP = sample.EXAMPLE_SHOP
T0 = sample.EXAMPLE_TIME  # 2025-10-09T08:53:20Z
# A TikTok return object shaped like docs/tiktok_api.md 4.1: make_return(return_id, status, update_time, **fields)
make_return = sample.example_return


def rows(db, sql: str, params: list | None = None) -> list[tuple]:
    with db.reader() as con:
        return con.execute(sql, params or []).fetchall()


def stored(db, return_id: str = "4035318504086604100") -> dict:
    with db.reader() as con:
        cur = con.execute("SELECT * FROM returns WHERE shop_id = ? AND return_id = ?", [SHOP, return_id])
        names = [d[0] for d in cur.description]
        row = cur.fetchone()
    assert row is not None, f"return {return_id} is not stored"
    return dict(zip(names, row, strict=True))


def test_return_row_maps_every_field_with_exact_money_and_utc_times():
    row = return_row(SHOP, make_return(), synced_at=datetime(2025, 1, 1))
    assert row["type"] == "Return & Refund"
    assert row["status"] == "Requested"
    assert row["marketplace_status"] == "RETURN_OR_REFUND_REQUEST_PENDING"
    assert (row["unmapped"], row["mismatch"]) == (False, False)
    assert row["refund_total"] == Decimal("10.1000") and isinstance(row["refund_total"], Decimal)
    assert row["refund_currency"] == "GBP"
    assert row["updated_at"] == datetime(2025, 10, 9, 8, 53, 20)
    assert row["due_by"] == datetime(2025, 10, 9, 9, 53, 20)  # the earliest deadline
    assert row["next_action"] == "SELLER_RESPOND_RETURN"
    assert row["seller_skus"] == "RED-M 111 RED-L 222"
    assert (row["tracking_number"], row["shipping_provider"]) == ("JT123", "J&T Express")
    assert (row["reason_code"], row["reason_text"]) == (
        "ecom_order_delivered_refund_and_return_reason_wrong_product_seller", "Wrong product")
    assert json.loads(row["payload"]) == make_return()


def test_missing_and_odd_fields_are_tolerated():
    odd = {"return_id": 42, "return_type": "SWAP", "return_status": None, "update_time": "oops",
           "refund_amount": {"refund_total": "not money"}, "seller_next_action_response": "later",
           "return_line_items": [None, {"sku_id": 9}]}
    row = return_row(SHOP, odd, synced_at=datetime(2025, 1, 1))
    assert row["return_id"] == "42"
    assert row["type"] == "SWAP"  # unknown enum values are kept verbatim
    assert row["status"] is None and row["updated_at"] is None and row["refund_total"] is None
    assert row["due_by"] is None and row["seller_skus"] == "9"
    assert [i["return_line_item_id"] for i in line_item_rows(SHOP, odd)] == ["#1"]


def test_first_page_counts_everything_new_and_records_created_history(db):
    objs = [make_return(str(i), update_time=T0 + i) for i in range(1, 51)]
    counts = upsert_page(db, SHOP, objs, synced_at=utcnow(), new_watermark=T0 + 50)
    assert counts == PageCounts(new=50, updated=0, unchanged=0)
    assert rows(db, "SELECT count(*) FROM returns") == [(50,)]
    assert rows(db, "SELECT count(*) FROM return_line_items") == [(100,)]
    assert rows(db, "SELECT kind, actor, count(*) FROM history GROUP BY ALL") == [("created", "sync", 50)]
    assert rows(db, "SELECT watermark FROM sync_state WHERE shop_id = ?", [SHOP]) == [(T0 + 50,)]


def test_same_page_again_is_unchanged_and_adds_nothing(db):
    objs = [make_return(str(i)) for i in range(5)]
    upsert_page(db, SHOP, objs, synced_at=utcnow())
    assert upsert_page(db, SHOP, copy.deepcopy(objs), synced_at=utcnow()) == PageCounts(unchanged=5)
    assert rows(db, "SELECT count(*) FROM returns") == [(5,)]
    assert rows(db, "SELECT count(*) FROM history") == [(5,)]


def test_duplicates_within_a_page_keep_the_latest_update_time(db):
    old = make_return("1", "RETURN_OR_REFUND_REQUEST_PENDING", T0)
    new = make_return("1", "AWAITING_BUYER_SHIP", T0 + 60)
    assert upsert_page(db, SHOP, [new, old], synced_at=utcnow()) == PageCounts(new=1)
    assert stored(db, "1")["marketplace_status"] == "AWAITING_BUYER_SHIP"


def test_tiktok_status_change_moves_status_and_appends_history(db):
    upsert_page(db, SHOP, [make_return()], synced_at=utcnow())
    changed = make_return(status="RETURN_OR_REFUND_REQUEST_SUCCESS", update_time=T0 + 100)
    assert upsert_page(db, SHOP, [changed], synced_at=utcnow()) == PageCounts(updated=1)
    row = stored(db)
    assert (row["status"], row["marketplace_status"], row["mismatch"]) == (
        "Accepted", "RETURN_OR_REFUND_REQUEST_SUCCESS", False)
    assert rows(db, "SELECT kind, old_value, new_value, actor FROM history WHERE kind <> 'created' ORDER BY id") == [
        ("marketplace_status", "RETURN_OR_REFUND_REQUEST_PENDING", "RETURN_OR_REFUND_REQUEST_SUCCESS", "sync"),
        ("status", "Requested", "Accepted", "sync"),
    ]


def test_local_columns_and_hand_set_status_survive_a_sync(db):
    upsert_page(db, SHOP, [make_return(status="AWAITING_BUYER_SHIP")], synced_at=datetime(2025, 1, 1))
    change_status(db, SHOP, "4035318504086604100", "Accepted", "ana")  # Pending -> Accepted by hand
    with db.writer() as con:
        con.execute("UPDATE returns SET review_outcome = 'ok', reviewed_by = 'bo', reviewed_at = now()")
    # TikTok changes something else (tracking) but not its status
    upsert_page(db, SHOP, [make_return(status="AWAITING_BUYER_SHIP", update_time=T0 + 5,
                                       return_tracking_number="NEW1")], synced_at=datetime(2025, 2, 1))
    row = stored(db)
    assert row["status"] == "Accepted" and row["mismatch"] is True
    assert (row["review_outcome"], row["reviewed_by"]) == ("ok", "bo") and row["reviewed_at"] is not None
    assert row["first_seen_at"] == datetime(2025, 1, 1) and row["last_synced_at"] == datetime(2025, 2, 1)
    assert row["tracking_number"] == "NEW1"
    # and when TikTok's status does move, Status follows it again
    upsert_page(db, SHOP, [make_return(status="RETURN_OR_REFUND_REQUEST_COMPLETE", update_time=T0 + 9)],
                synced_at=utcnow())
    assert (stored(db)["status"], stored(db)["mismatch"]) == ("Refund", False)



def test_a_hand_edit_racing_page_writes_on_the_same_return_never_conflicts(db):
    """One write path per process: a sync's page and a manager's change take turns, so neither needs a retry."""
    import threading

    from returns_core.workflow import add_note

    upsert_page(db, SHOP, [make_return(status="AWAITING_BUYER_SHIP")], synced_at=utcnow())
    failures: list[str] = []

    def pages() -> None:
        for i in range(40):
            status = ("AWAITING_BUYER_SHIP", "BUYER_SHIPPED_ITEM")[i % 2]
            try:
                upsert_page(db, SHOP, [make_return(status=status, update_time=T0 + i + 1)], synced_at=utcnow())
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                failures.append(f"page: {exc!r}")

    def edits() -> None:
        for i in range(40):
            try:
                add_note(db, SHOP, "4035318504086604100", "ana", f"note {i}")
                with db.writer() as con:
                    con.execute("UPDATE returns SET review_outcome = ? WHERE shop_id = ?", [f"o{i}", SHOP])
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                failures.append(f"edit: {exc!r}")

    threads = [threading.Thread(target=pages), threading.Thread(target=edits)]
    with db.session():  # one open file for both, as while a sync holds it between pages
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert failures == []
    assert rows(db, "SELECT count(*) FROM history WHERE kind = 'note'") == [(40,)]
    assert stored(db)["review_outcome"] == "o39"


def test_unmapped_status_is_stored_verbatim_flagged_and_keeps_the_previous_status(db):
    upsert_page(db, SHOP, [make_return(), make_return("new-one", status="PARTNER_REVIEW_PENDING")],
                synced_at=utcnow())
    fresh = stored(db, "new-one")
    assert (fresh["status"], fresh["marketplace_status"], fresh["unmapped"]) == (None, "PARTNER_REVIEW_PENDING", True)
    upsert_page(db, SHOP, [make_return(status="PARTNER_REVIEW_PENDING", update_time=T0 + 1)], synced_at=utcnow())
    row = stored(db)
    assert (row["status"], row["unmapped"], row["mismatch"]) == ("Requested", True, False)
    kinds = rows(db, "SELECT kind FROM history WHERE return_id = ? ORDER BY id", ["4035318504086604100"])
    assert kinds == [("created",), ("marketplace_status",)]  # Status did not move: no 'status' row


def test_line_items_are_replaced_by_the_latest_object(db):
    upsert_page(db, SHOP, [make_return()], synced_at=utcnow())
    one_item = make_return(update_time=T0 + 1)
    one_item["return_line_items"] = one_item["return_line_items"][1:]
    upsert_page(db, SHOP, [one_item], synced_at=utcnow())
    assert rows(db, "SELECT return_line_item_id, seller_sku, refund_total FROM return_line_items") == [
        ("L2", "RED-L", Decimal("5.0500"))]
    assert stored(db)["seller_skus"] == "RED-L 222"
    # the return's own copy, which analytics and the SKU filter read, follows in the same write
    assert stored(db)["lines"] == [{"seller_sku": "RED-L", "sku_id": "222", "product_name": None,
                                    "refund_currency": "GBP", "refund_total": Decimal("5.0500")}]
    assert count_returns(db, ReturnFilters(skus=("RED-L",))) == 1
    assert count_returns(db, ReturnFilters(skus=("111",))) == 0  # the dropped item's SKU id
    no_items = make_return(update_time=T0 + 2, return_line_items=[])
    upsert_page(db, SHOP, [no_items], synced_at=utcnow())
    assert stored(db)["lines"] is None
    assert rows(db, "SELECT count(*) FROM return_line_items") == [(0,)]


def test_migration_2_copies_each_returns_line_items_onto_it(tmp_path):
    """A store made before `returns.lines` existed gets them from return_line_items, once."""
    path = version_1_store(tmp_path / "old.duckdb", SHOP)
    db = Database(path, key=Fernet.generate_key().decode())
    assert db.upgrade_pending()  # callers say "upgrading" first: on a big store it takes a while
    db.migrate()
    assert not db.upgrade_pending()
    assert not Database(tmp_path / "new.duckdb").upgrade_pending()  # a new store is no upgrade
    assert rows(db, "SELECT version FROM schema_migrations ORDER BY 1") == [(v,) for v, _ in MIGRATIONS]
    lines = dict(rows(db, "SELECT return_id, lines FROM returns"))
    assert lines == {
        "R1": [{"seller_sku": "TEE-M", "sku_id": "111", "product_name": "Tee", "refund_currency": "USD",
                "refund_total": Decimal("1.0000")},
               {"seller_sku": None, "sku_id": "222", "product_name": "Mug", "refund_currency": "USD",
                "refund_total": Decimal("2.5000")}],
        "R2": None,  # no line items: none, as ingest writes it
    }
    assert count_returns(db, ReturnFilters(skus=("222",))) == 1


def test_money_is_exact_decimal_in_the_store(db):
    upsert_page(db, SHOP, [make_return(refund_amount={"currency": "USD", "refund_total": "0.10",
                                                      "refund_subtotal": "12345678901.99"})], synced_at=utcnow())
    row = stored(db)
    assert row["refund_total"] == Decimal("0.1") and row["refund_subtotal"] == Decimal("12345678901.99")
    assert rows(db, "SELECT sum(refund_total) * 3 FROM returns") == [(Decimal("0.3000"),)]


def test_watermark_never_moves_backwards_and_run_counters_add_up(db):
    run_id, _ = sync_runs.start(db, SHOP, full=False, trigger="test")
    upsert_page(db, SHOP, [make_return("1", update_time=T0 + 100)], synced_at=utcnow(), new_watermark=T0 + 100,
                run_id=run_id)
    upsert_page(db, SHOP, [make_return("1", update_time=T0 + 100), make_return("2", update_time=T0 + 5)],
                synced_at=utcnow(), new_watermark=T0 + 5, run_id=run_id)
    assert rows(db, "SELECT watermark FROM sync_state") == [(T0 + 100,)]
    assert rows(db, "SELECT pages, new_count, updated_count, unchanged_count FROM sync_runs") == [(2, 2, 0, 1)]


def test_a_failing_page_writes_nothing_at_all(db, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(return_writes.history, "append", broken)  # after the return and its line items
    with pytest.raises(RuntimeError):
        upsert_page(db, SHOP, [make_return()], synced_at=utcnow(), new_watermark=T0)
    assert rows(db, "SELECT (SELECT count(*) FROM returns), (SELECT count(*) FROM history), "
                    "(SELECT count(*) FROM sync_state)") == [(0, 0, 0)]


def test_an_empty_page_only_moves_nothing(db):
    assert upsert_page(db, SHOP, [], synced_at=utcnow(), new_watermark=None) == PageCounts()
    assert rows(db, "SELECT count(*) FROM returns") == [(0,)]


def test_records_are_stored_in_tiktok_order_and_refetch_updates_them(db):
    records = [{"event": "ORDER_RETURN", "role": "BUYER", "description": "Buyer asked", "create_time": T0},
               {"event": "ORDER_RETURN", "role": "SELLER", "description": "Seller approved", "create_time": T0 + 9}]
    assert return_writes.store_records(db, SHOP, "r1", records, utcnow()) == 2
    assert return_writes.store_records(db, SHOP, "r1", records, utcnow()) == 2
    assert rows(db, "SELECT seq, role, created_at FROM return_records ORDER BY seq") == [
        (1, "BUYER", datetime(2025, 10, 9, 8, 53, 20)), (2, "SELLER", datetime(2025, 10, 9, 8, 53, 29))]


def test_threads_opening_and_closing_the_store_never_lose_the_python_scans(tmp_path):
    """Regression: a connect racing a new instance's set-up lost python_arrow_scan (DuckDB 2.0)."""
    import threading

    import pyarrow as pa

    from returns_core.store.db import Database

    db = Database(tmp_path / "race.duckdb")
    with db.writer() as con:
        con.execute("CREATE TABLE t (a INTEGER)")
    failures: list[str] = []

    def work(writes: bool) -> None:
        for _ in range(150):
            try:
                if writes:
                    with db.writer() as con:
                        con.register("_rows", pa.table({"a": [1, 2, 3]}))
                        con.execute("INSERT INTO t SELECT * FROM _rows")
                else:
                    with db.reader() as con:
                        con.execute("SELECT count(*) FROM t").fetchall()
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                failures.append(repr(exc))

    threads = [threading.Thread(target=work, args=(i % 2 == 1,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    with db.reader() as con:
        assert con.execute("SELECT count(*) FROM t").fetchone() == (2 * 150 * 3,)


def test_the_filtered_total_read_off_the_status_counts_equals_a_count(db):
    from returns_core import domain
    from returns_core.filters import total_from_status_counts
    from returns_core.store.returns import status_counts

    sample.write_returns(db, "s", [
        sample.tiktok_return(return_id, return_type=sample.return_type_for(type_word),
                             return_status=sample.marketplace_status_for(status) if status else "BRAND_NEW_STATUS")
        for return_id, status, type_word in (("a", domain.REQUESTED, "Refund"), ("b", domain.ACCEPTED, "Refund"),
                                             ("c", None, "Return"), ("d", domain.ACCEPTED, "Return"))])
    for filters in (ReturnFilters(), ReturnFilters(statuses=(domain.ACCEPTED,)), ReturnFilters(types=("Return",)),
                    ReturnFilters(statuses=(domain.ACCEPTED, domain.REQUESTED), types=("Refund",))):
        assert total_from_status_counts(status_counts(db, filters), filters) == count_returns(db, filters)


@pytest.mark.parametrize(("term", "expected"), [
    ("blnd", ["a"]), ("BLND-2", ["a"]), ("50%", ["b"]), ("x_1", ["c"]), ("x%1", []), ("1z9", ["c"]),
    ("4035", ["a"]),  # a return ID's start
    ("trk", []),  # letters alone are no tracking number (every carrier's has digits): only SKUs are searched
])
def test_search_matches_skus_and_tracking_in_any_case_and_pattern_characters_literally(db, term, expected):
    from returns_core.store.returns import grid_page

    sample.write_returns(db, "s", [
        sample.tiktok_return(return_id, order_id=order_id, tracking_number=tracking,
                             line_items=[sample.line_item("L1", seller_sku=sku, sku_id=sku_id)])
        for return_id, order_id, sku, sku_id, tracking in (("4035a", "5001", "BLND-200-BLK", "111", "TRK1"),
                                                          ("b", "5002", "MUG-50%OFF", "222", "TRK2"),
                                                          ("c", "5003", "TEE-M", "333", "X_1Z9"))])
    found = grid_page(db, ReturnFilters(search=term))["Marketplace Return ID"]
    assert sorted(r.removeprefix("4035") for r in found) == expected


# --- "may the seller decide", stored with each row ---------------------------------------------

DECIDABLE_STATES = [  # (return_type, return_status, next action TikTok names), a mix of waiting and not
    ("REFUND", "RETURN_OR_REFUND_REQUEST_PENDING", None),
    ("RETURN_AND_REFUND", "BUYER_SHIPPED_ITEM", None),
    ("RETURN_AND_REFUND", "RETURN_OR_REFUND_REQUEST_SUCCESS", None),
    ("REPLACEMENT", "AWAITING_BUYER_SHIP", None),
    ("RETURN_AND_REFUND", "SOMETHING_NEW", "SELLER_RESPOND_RETURN"),
    ("REFUND", "RETURN_OR_REFUND_REQUEST_PENDING", "BUYER_RESPOND"),
]


def _waiting_ids(db) -> list[str]:
    from returns_core.store.returns import grid_page

    return sorted(grid_page(db, ReturnFilters(waiting=True))["Marketplace Return ID"])


def test_a_sync_stores_whether_tiktok_waits_for_the_seller_and_a_later_sync_updates_it(db):
    from returns_core import domain

    objects = [sample.tiktok_return(f"R{i}", return_type=t, return_status=s, created=T0, updated=T0,
                                    next_actions=[(action, T0 + 86400)] if action else ())
               for i, (t, s, action) in enumerate(DECIDABLE_STATES)]
    upsert_page(db, SHOP, objects, synced_at=utcnow())
    expected = sorted(f"R{i}" for i, (t, s, a) in enumerate(DECIDABLE_STATES) if domain.can_decide(t, s, a))
    assert expected == ["R0", "R1", "R4"]
    assert _waiting_ids(db) == expected
    # TikTok moved R0 on (the seller approved it elsewhere): the next sync says so
    upsert_page(db, SHOP, [sample.tiktok_return("R0", return_type="REFUND", created=T0, updated=T0 + 60,
                                                return_status="RETURN_OR_REFUND_REQUEST_SUCCESS")],
                synced_at=utcnow())
    assert _waiting_ids(db) == ["R1", "R4"]
    assert rows(db, "SELECT can_decide FROM returns WHERE return_id = 'R0'") == [(False,)]


def test_migration_11_works_out_whether_tiktok_waits_for_the_seller_for_the_rows_stored_before(tmp_path):
    import duckdb

    from returns_core import domain

    path = tmp_path / "v10.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMP)")
        for version, sql in MIGRATIONS[:10]:
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, now())", [version])
        for i, (return_type, status, action) in enumerate(DECIDABLE_STATES):
            con.execute("INSERT INTO returns (shop_id, return_id, return_type, marketplace_status, next_action, "
                        "first_seen_at, last_synced_at) VALUES (?, ?, ?, ?, ?, now(), now())",
                        [SHOP, f"R{i}", return_type, status, action])
    db = Database(path, key=Fernet.generate_key().decode())
    assert db.upgrade_pending()
    db.migrate()
    stored_answers = dict(rows(db, "SELECT return_id, can_decide FROM returns"))
    assert stored_answers == {f"R{i}": domain.can_decide(*state) for i, state in enumerate(DECIDABLE_STATES)}
    assert _waiting_ids(db) == ["R0", "R1", "R4"]
