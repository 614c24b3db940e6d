"""AppTest: every page of the app, on a small store whose content is fully known (tests/ui_fixtures.py)."""

from __future__ import annotations

import re
import threading
from datetime import date, timedelta

import pytest

from returns_core import domain, jobs
from returns_core import filters as return_filters
from returns_core import sample_data as sample
from returns_core.explain import REAUTH_REASON, FailureKind
from returns_core.store import returns
from returns_core.store.db import Database, utcnow
from tests import ui_fixtures as ui
from tests.apptest import grid, metric, open_app, return_ids, run_until, sidebar_text, texts
from tests.ui_fixtures import ALPHA, ALPHA_NAME, BETA

PAGES = ("app_pages/returns.py", "app_pages/detail.py", "app_pages/refunds.py", "app_pages/reasons.py",
         "app_pages/accounts.py", "app_pages/sync_history.py")
ALPHA_LABEL = f"{ALPHA_NAME} ({ALPHA})"


@pytest.fixture
def seeded(app_db) -> Database:
    ui.seed_store(app_db)
    return app_db


# --- every page -----------------------------------------------------------------------------


@pytest.mark.parametrize("page_file", PAGES)
def test_every_page_renders_without_exception(seeded, page_file):
    at = open_app(page_file)
    assert at.title, f"{page_file} shows no title"


@pytest.mark.parametrize("page_file", PAGES)
def test_every_page_renders_on_an_empty_store(app_db, page_file):
    ui.add_account(app_db, ALPHA, ALPHA_NAME)
    open_app(page_file)


def test_the_app_upgrades_an_older_store_and_shows_its_returns(tmp_path, monkeypatch):
    from tests.reliability import back_to_version_1, version_1_store

    path = version_1_store(tmp_path / "old.duckdb", ALPHA)
    monkeypatch.setenv("RETURNS_DB", str(path))
    monkeypatch.setenv("RETURNS_DEMO", "0")
    store = Database(path)
    ui.add_account(store, ALPHA, ALPHA_NAME)  # (opening it upgrades it: check on a fresh handle below)
    back_to_version_1(path)  # as an older Returns Desk left it, with the account
    assert Database(path).upgrade_pending()
    at = open_app()
    assert sorted(return_ids(at)) == ["R1", "R2"]
    assert not Database(path).upgrade_pending()
    at.text_input(key="sku").input("TEE-M").run()  # the SKU filter reads what the upgrade filled in
    assert return_ids(at) == ["R1"]


# --- returns grid ---------------------------------------------------------------------------


def test_grid_shows_every_return_newest_first_with_the_design_columns_in_order(seeded):
    at = open_app()
    frame = grid(at)
    assert list(frame.columns[:9]) == list(domain.SEED_COLUMNS)
    assert {"Refund Total", "Due By", "Mismatch", "Unmapped Status"} <= set(frame.columns)
    assert list(frame["Marketplace Return ID"]) == ["R8", "R7", "R6", "R5", "R4", "R3", "R2", "R1"]
    assert frame.set_index("Marketplace Return ID").loc["R2", "Type"] == "Return & Refund"


def test_status_counts_are_shown_per_status_under_the_other_filters(seeded):
    at = open_app()
    assert metric(at, "All") == "8"
    assert [metric(at, s) for s in domain.STATUSES] == ["1", "1", "2", "1", "1", "1"]
    assert metric(at, "Unmapped") == "1"
    at.multiselect(key="type").set_value([domain.REFUND]).run()
    assert metric(at, "All") == "4"
    assert metric(at, "Accepted") == "1"


def test_type_filter_keeps_only_that_type(seeded):
    at = open_app()
    at.multiselect(key="type").set_value([domain.REFUND]).run()
    assert sorted(return_ids(at)) == ["R1", "R5", "R6", "R8"]


def test_status_pills_filter_by_our_status(seeded):
    at = open_app()
    at.pills(key="status").set_value([domain.ACCEPTED]).run()
    assert sorted(return_ids(at)) == ["R2", "R6"]
    at.pills(key="status").set_value([domain.ACCEPTED, domain.PENDING]).run()
    assert sorted(return_ids(at)) == ["R2", "R4", "R6"]


def test_marketplace_status_and_reason_filters(seeded):
    at = open_app()
    at.multiselect(key="reason").set_value(["Damaged item"]).run()
    assert sorted(return_ids(at)) == ["R1", "R3", "R6", "R8"]
    at.multiselect(key="mstatus").set_value(["RETURN_OR_REFUND_REQUEST_SUCCESS"]).run()
    assert sorted(return_ids(at)) == ["R6"]


def test_new_tiktok_status_is_offered_as_a_marketplace_status_filter(seeded):
    at = open_app()
    assert "BRAND_NEW_TIKTOK_STATUS" in at.multiselect(key="mstatus").options


def test_due_soon_and_overdue_toggles(seeded):
    at = open_app()
    at.toggle(key="due").set_value(True).run()
    assert sorted(return_ids(at)) == ["R1", "R6"]
    at.toggle(key="due").set_value(False).run()
    at.toggle(key="overdue").set_value(True).run()
    assert return_ids(at) == ["R4"]


def test_deadline_column_flags_due_soon_and_overdue(seeded):
    frame = grid(open_app()).set_index("Marketplace Return ID")
    assert frame.loc["R1", "Deadline"] == "🟠 Due soon"
    assert frame.loc["R4", "Deadline"] == "🔴 Overdue"
    assert frame.loc["R2", "Deadline"] == ""


def close_past_its_deadline(db: Database, return_id: str = "R5") -> None:
    """R5 is Rejected: give it the passed Due By a closed case may keep from its last wait."""
    with db.writer() as con:
        con.execute("UPDATE returns SET due_by = ? WHERE return_id = ?", [utcnow() - timedelta(hours=3), return_id])


def test_a_closed_return_past_its_deadline_is_not_overdue_in_the_sidebar_or_the_grid(seeded):
    close_past_its_deadline(seeded)
    at = open_app()
    assert metric(at, "Overdue") == "1"  # R4 only
    assert grid(at).set_index("Marketplace Return ID").loc["R5", "Deadline"] == ""
    at.toggle(key="overdue").set_value(True).run()
    assert return_ids(at) == ["R4"]  # the sidebar's "Show them" and the toggle list what the count says


@pytest.mark.parametrize(("term", "expected"), [
    ("R3", ["R3"]),  # return ID
    ("OR5", ["R5"]),  # order ID
    ("sku-blue", ["R2", "R5"]),  # SKU, any case
    ("TRK77", ["R7"]),  # part of a tracking number
    ("nothing-like-this", []),
])
def test_search_finds_returns_by_id_order_sku_or_tracking(seeded, term, expected):
    at = open_app()
    at.text_input(key="q").input(term).run()
    assert sorted(return_ids(at)) == expected


def test_sku_filter(seeded):
    at = open_app()
    at.text_input(key="sku").input("SKU-RED SKU-X1").run()
    assert sorted(return_ids(at)) == ["R1", "R3", "R6"]


def test_created_date_range_filter(seeded):
    at = open_app(created=["2026-02-01", "2026-03-01"])
    assert sorted(return_ids(at)) == ["R3", "R4", "R5"]


def test_a_link_with_filters_reproduces_the_view(seeded):
    query = return_filters.filters_to_query(return_filters.ReturnFilters(types=(domain.REFUND,), search="SKU-BLUE"))
    at = open_app(**query)
    assert return_ids(at) == ["R5"]
    assert at.multiselect(key="type").value == [domain.REFUND]
    assert at.text_input(key="q").value == "SKU-BLUE"


def test_account_view_limits_every_number_to_that_shop(seeded):
    at = open_app(account=ALPHA_LABEL)
    assert at.sidebar.selectbox(key="account").value == ALPHA_LABEL
    assert sorted(return_ids(at)) == ["R1", "R2", "R3", "R4", "R5"]
    assert metric(at, "All") == "5"
    assert metric(at, f"Due in {domain.DUE_SOON_HOURS} h") == "1"
    at.sidebar.selectbox(key="account").set_value("All accounts").run()
    assert len(return_ids(at)) == 8


def test_bad_filter_input_shows_one_error_and_changes_nothing(seeded):
    at = open_app()
    at.multiselect(key="type").set_value([domain.REFUND]).run()
    at.text_input(key="sku").input(" ".join(f"S{i}" for i in range(return_filters.MAX_SKUS + 1))).run()
    assert len(at.error) == 1
    assert "Too many SKUs" in at.error[0].value
    assert sorted(return_ids(at)) == ["R1", "R5", "R6", "R8"]


def test_backwards_date_range_in_a_link_is_refused_with_one_line(seeded):
    at = open_app(created=["2026-03-01", "2026-02-01"])
    assert not at.exception
    assert len(return_ids(at)) in (3, 8)  # the widget may sort the two dates itself; never an exception


def test_sort_by_any_column_both_ways(seeded):
    at = open_app()
    at.selectbox(key="sort").set_value("Refund Total").run()
    at.selectbox(key="order").set_value("Oldest / lowest first").run()
    assert return_ids(at)[:3] == ["R8", "R5", "R6"]
    assert return_ids(at)[-1] == "R4"  # no refund money: last either way
    at.selectbox(key="order").set_value("Newest / highest first").run()
    assert return_ids(at)[:2] == ["R3", "R2"]


def test_paging_runs_in_the_database(seeded):
    sample.write_shop_returns(seeded, sample.synthetic_returns(60, (ALPHA,)))
    at = open_app()
    at.selectbox(key="size").set_value(25).run()
    assert len(return_ids(at)) == 25
    assert at.pagination(key="page").num_pages == 3
    at.pagination(key="page").set_value(3).run()
    assert len(return_ids(at)) == 68 - 50
    assert "Showing 51–68 of **68** returns" in texts(at)


def test_changing_a_filter_goes_back_to_page_one(seeded):
    sample.write_shop_returns(seeded, sample.synthetic_returns(60, (ALPHA,)))
    at = open_app()
    at.selectbox(key="size").set_value(25).run()
    at.pagination(key="page").set_value(2).run()
    at.multiselect(key="type").set_value([domain.REFUND]).run()
    assert at.pagination(key="page").value == 1


def test_selecting_a_row_opens_its_detail_page(seeded):
    at = open_app()
    at.session_state["returns_grid"] = {"selection": {"rows": [2], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    assert at.query_params["id"] == "R6"
    assert at.query_params["shop"] == BETA
    assert at.title[0].value == "Return R6"


def test_export_buttons_offer_csv_excel_and_parquet(seeded):
    at = open_app()
    assert [b.proto.label for b in at.get("download_button")] == ["CSV", "Excel", "Parquet"]


def test_export_writes_exactly_the_filtered_rows(seeded, tmp_path):
    filters = return_filters.filters_from_query({"type": [domain.REFUND], "q": "SKU-BLUE"})
    for suffix in (".csv", ".xlsx", ".parquet"):
        assert returns.export_returns(seeded, filters, tmp_path / f"out{suffix}") == 1


def test_filters_survive_a_round_trip_through_the_url():
    filters = return_filters.ReturnFilters(types=(domain.REFUND, domain.RETURN), statuses=(domain.ACCEPTED,),
                                    reasons=("Wrong size",), skus=("A", "B"), due_soon=True, flagged=True,
                                    created_from=date(2026, 1, 1), created_to=date(2026, 2, 1), search="x y")
    assert return_filters.filters_from_query(return_filters.filters_to_query(filters)) == filters


# --- sidebar --------------------------------------------------------------------------------


def test_sidebar_shows_last_sync_due_soon_and_auto_sync(seeded):
    at = open_app()
    sidebar = "\n".join(c.value for c in at.sidebar.caption)
    assert re.search(rf"Last sync of {ALPHA_NAME}: \*\*(29|30) min ago\*\*", sidebar), sidebar
    assert f"Last sync of {ui.BETA_NAME}: **never**" in sidebar  # its only run failed
    assert metric(at, f"Due in {domain.DUE_SOON_HOURS} h") == "2"
    assert metric(at, "Overdue") == "1"  # R4: its deadline passed 2 h ago
    assert at.sidebar.selectbox(key="sidebar_auto_sync").value == "Off"
    at.sidebar.selectbox(key="sidebar_auto_sync").set_value("Hourly").run()
    assert jobs.auto_sync_choice(seeded) == "Hourly"


def test_sandbox_account_carries_a_sandbox_badge(app_db):
    ui.add_account(app_db, ALPHA, "Demo Shop (sandbox)", is_sandbox=True)
    at = open_app(account=f"Demo Shop (sandbox) ({ALPHA})")
    assert any("SANDBOX" in m.value for m in at.sidebar.markdown)


# --- no usable account ----------------------------------------------------------------------


def test_no_account_at_all_says_so_and_links_to_accounts(app_db):
    at = open_app()
    assert at.error[0].value == "No Active/Valid Accounts Found"
    body = texts(at)
    assert "not connected" in body or "no shop is connected" in body
    assert "expired" in body and "disabled" in body
    assert any(link.proto.page.endswith("accounts.py") or "accounts" in link.proto.page for link in at.get("page_link"))
    assert not at.dataframe


def test_expired_invalid_and_disabled_accounts_are_shown_as_such(app_db):
    ui.add_account(app_db, ALPHA, ALPHA_NAME, refresh_expires_in=timedelta(days=-1))
    ui.add_account(app_db, BETA, ui.BETA_NAME, auth_state="invalid")
    ui.add_account(app_db, "7000000003", "Gamma Shop", enabled=False)
    at = open_app()
    assert at.error[0].value == "No Active/Valid Accounts Found"
    body = texts(at)
    assert f"{ALPHA_LABEL} is **Expired**" in body
    assert "is **Invalid**" in body and "is **Disabled**" in body
    assert at.sidebar.button(key="sidebar_sync").disabled


# --- detail ---------------------------------------------------------------------------------


def test_deep_link_opens_that_return(seeded):
    at = open_app("app_pages/detail.py", id="R2", shop=ALPHA)
    assert at.title[0].value == "Return R2"
    assert metric(at, "Status") == domain.ACCEPTED
    assert "**Marketplace Status** (TikTok): `RETURN_OR_REFUND_REQUEST_SUCCESS`" in texts(at)
    items = at.dataframe[0].value
    assert list(items["SKU"]) == ["SKU-BLUE"]
    body = texts(at)
    assert "TRK222" in body and "20.00 USD" in body and "Wrong size" in body
    assert at.get("json"), "the raw payload is shown"


def test_detail_shows_a_deadline_only_on_an_open_return(seeded):
    close_past_its_deadline(seeded)
    due = next(m for m in open_app("app_pages/detail.py", id="R5").metric if m.label == "Due By")
    assert due.value != "None" and not due.proto.delta  # Rejected: its old Due By, but no "Overdue"
    due = next(m for m in open_app("app_pages/detail.py", id="R4").metric if m.label == "Due By")
    assert due.proto.delta == "Overdue"


def test_deep_link_without_shop_finds_the_return(seeded):
    at = open_app("app_pages/detail.py", id="R7")
    assert at.title[0].value == "Return R7"


def test_unknown_return_id_says_so_and_links_back(seeded):
    at = open_app("app_pages/detail.py", id="NOPE")
    assert at.title[0].value == "Return not found"
    assert "NOPE" in at.warning[0].value
    assert at.get("page_link")


def test_detail_shows_our_history_and_flags_unmapped_status(seeded):
    at = open_app("app_pages/detail.py", id="R8")
    assert metric(at, "Status") == "Unmapped"
    assert any("new to us" in w.value for w in at.warning)
    assert len(at.dataframe) >= 2  # line items and history


# --- refunds --------------------------------------------------------------------------------


def test_refunds_totals_by_currency_requested_accepted_completed(seeded):
    at = open_app("app_pages/refunds.py")
    assert metric(at, "Requested (USD)") == "73.00"  # R1 10 + R2 20 + R3 30 + R7 12 + R8 1
    assert metric(at, "Accepted (USD)") == "20.00"
    assert metric(at, "Completed (USD)") == "30.00"
    assert metric(at, "Requested (EUR)") == "12.50"
    assert metric(at, "Accepted (EUR)") == "7.50"
    summary = at.dataframe[0].value.set_index("Currency")
    assert float(summary.loc["USD", "Subtotal"]) == pytest.approx(73 * 0.8)
    assert sorted(return_ids(at, "refunds_grid")) == ["R1", "R2", "R3", "R5", "R6", "R7", "R8"]  # no Return type
    assert metric(at, "All") == "7"
    assert metric(at, "Pending") == "0"  # R4, the only Pending return, is a Return (replacement)


def test_refunds_share_the_grid_filters(seeded):
    at = open_app("app_pages/refunds.py")
    assert at.multiselect(key="type").options == list(return_filters.REFUND_TYPES)
    at.multiselect(key="type").set_value([domain.REFUND]).run()
    assert metric(at, "Requested (USD)") == "11.00"  # R1 10 + R8 1
    assert sorted(return_ids(at, "refunds_grid")) == ["R1", "R5", "R6", "R8"]


# --- accounts -------------------------------------------------------------------------------


def test_accounts_page_lists_accounts_with_status_and_last_sync(seeded):
    at = open_app("app_pages/accounts.py")
    table = at.dataframe[0].value.set_index("Name")
    assert table.loc[ALPHA_NAME, "Status"] == "Active"
    assert table.loc[ALPHA_NAME, "Account ID"] == ALPHA
    assert not table.loc[ALPHA_NAME, "Sandbox"]
    assert table["Last sync"].notna().sum() == 1


def test_disable_then_enable_an_account(seeded):
    at = open_app("app_pages/accounts.py")
    at.selectbox(key="accounts_pick").set_value(ALPHA_LABEL).run()
    at.button(key="accounts_enable").click().run()
    table = at.dataframe[0].value.set_index("Name")
    assert table.loc[ALPHA_NAME, "Status"] == "Disabled"
    at.button(key="accounts_enable").click().run()
    assert at.dataframe[0].value.set_index("Name").loc[ALPHA_NAME, "Status"] == "Active"


def test_adding_an_account_that_cannot_connect_fails_in_one_line_and_forgets_the_secrets(app_db):
    at = open_app("app_pages/accounts.py")
    at.text_input(key="accounts_add_name").input("New shop")
    at.text_input(key="accounts_add_app_key").input("key")
    at.text_input(key="accounts_add_app_secret").input("very-secret-value")
    at.text_input(key="accounts_add_access").input("access-token-value")
    at.text_input(key="accounts_add_api_base").input("http://127.0.0.1:9")
    at.text_input(key="accounts_add_auth_base").input("http://127.0.0.1:9")
    next(b for b in at.form_submit_button if b.label == "Connect").click().run()
    assert not at.exception
    assert at.error and at.error[0].value.startswith("Could not connect")
    everything = texts(at) + "".join(str(t.value) for t in at.text_input)
    everything += "".join(str(at.session_state[k]) for k in ("accounts_add_app_secret", "accounts_add_access")
                          if k in at.session_state)
    assert "very-secret-value" not in everything and "access-token-value" not in everything


def test_oauth_tab_shows_the_authorization_link(app_db):
    at = open_app("app_pages/accounts.py")
    at.text_input(key="accounts_oauth_service_id").input("1234").run()
    assert any("service_id=1234" in c.value for c in at.code)


# --- sync history ---------------------------------------------------------------------------


def test_sync_history_lists_runs_newest_first_with_errors(seeded):
    ui.add_sync_run(seeded, ALPHA, ago=timedelta(minutes=1), new=9)
    at = open_app("app_pages/sync_history.py")
    runs = at.dataframe[0].value
    assert list(runs["New"]) == [9, 5, 0]
    assert runs["Error"].iloc[2].startswith("TikTok had a server error")
    at = open_app("app_pages/sync_history.py", account=ALPHA_LABEL)
    assert len(at.dataframe[0].value) == 2


# --- Sync Returns from the sidebar ----------------------------------------------------------


def fake_sync(result_error: str | None = None, new: int = 3, release: threading.Event | None = None,
              failure: FailureKind | None = None):
    """A stand-in for TikTok behind sync.sync_account: one page reported, then held until `release` is set."""
    from returns_core.sync import SyncProgress, SyncResult

    def sync_account(db, account, *, full=False, on_progress=None, trigger="cli", **_):
        if on_progress:
            on_progress(SyncProgress(1, new, 1, 0, 10))
        if release is not None:
            assert release.wait(60), "the test never let the sync finish"
        return SyncResult(account.shop_id, account.name, 1, new, 1, 0, 0.3, result_error, None, failure=failure)

    return sync_account


def test_sync_returns_runs_in_the_background_then_shows_counts_and_a_toast(seeded, monkeypatch):
    release = threading.Event()
    monkeypatch.setattr("returns_core.sync.sync_account", fake_sync(new=3, release=release))
    at = open_app(account=ALPHA_LABEL)
    at.sidebar.button(key="sidebar_sync").click().run()
    assert not at.exception
    # held inside the sync: the page is usable, the button waits, the progress shows
    assert at.sidebar.button(key="sidebar_sync").disabled
    assert "synced" not in sidebar_text(at)
    release.set()
    run_until(at, lambda a: "synced" in sidebar_text(a))
    assert f"**{ALPHA_NAME}** synced: 3 new, 1 updated" in sidebar_text(at)
    assert any("3 new" in t.value for t in at.toast)
    assert not at.sidebar.button(key="sidebar_sync").disabled


@pytest.mark.parametrize("finish_after_read", [1, 2, 3])
def test_a_finished_sync_and_the_sync_button_come_from_one_reading(seeded, monkeypatch, finish_after_read):
    """The sidebar never shows a finished sync beside a disabled button, whenever the sync ends."""
    release = threading.Event()
    monkeypatch.setattr("returns_core.sync.sync_account", fake_sync(new=2, release=release))
    at = open_app(account=ALPHA_LABEL)
    at.sidebar.button(key="sidebar_sync").click().run()
    reads: list[int] = []
    real_latest = jobs.SyncJobs.latest

    def latest_then_finish(self, shop_ids=None):
        found = real_latest(self, shop_ids)
        reads.append(1)
        if len(reads) == finish_after_read and not release.is_set():
            # the sync ends right after this reading of its state
            release.set()
            self.wait(60)
        return found

    monkeypatch.setattr(jobs.SyncJobs, "latest", latest_then_finish)
    at.run()
    assert not at.exception
    finished = "synced" in sidebar_text(at)
    assert finished == (not at.sidebar.button(key="sidebar_sync").disabled)
    run_until(at, lambda a: "synced" in sidebar_text(a))
    assert not at.sidebar.button(key="sidebar_sync").disabled


def test_a_failed_sync_says_why_and_what_to_do(seeded, monkeypatch):
    monkeypatch.setattr("returns_core.sync.sync_account",
                        fake_sync(REAUTH_REASON, failure=FailureKind.AUTHORIZATION))
    at = open_app(account=ALPHA_LABEL)
    at.sidebar.button(key="sidebar_sync").click().run()
    run_until(at, lambda a: bool(a.sidebar.error))
    message = at.sidebar.error[0].value
    assert f"Sync of {ALPHA_NAME} failed" in message
    assert jobs.RECONNECT_ADVICE in message
    assert "Traceback" not in message


def test_sync_returns_for_all_accounts_syncs_every_active_one(seeded, monkeypatch):
    monkeypatch.setattr("returns_core.sync.sync_account", fake_sync())
    at = open_app()
    at.sidebar.button(key="sidebar_sync").click().run()
    run_until(at, lambda a: sidebar_text(a).count("synced") == 2)


# --- the embedded demo shop -----------------------------------------------------------------


@pytest.fixture
def demo_on(app_db, monkeypatch) -> Database:
    monkeypatch.setenv("RETURNS_DEMO", "1")
    return app_db


def test_a_fresh_store_gets_the_sandbox_demo_shop_and_sync_fills_the_grid(demo_on):
    at = open_app()
    assert at.sidebar.selectbox(key="account").options[1].startswith("Demo Shop (sandbox)")
    assert any("SANDBOX" in m.value for m in at.sidebar.markdown)
    assert metric(at, "All") == "0"
    at.sidebar.button(key="sidebar_sync").click().run()
    run_until(at, lambda a: "synced" in sidebar_text(a), timeout=120)
    total = returns.count_returns(demo_on, return_filters.ReturnFilters())
    assert total > 100
    assert metric(at, "All") == f"{total:,}"
    assert len(return_ids(at)) == 50
    assert sum(int(metric(at, s).replace(",", "")) for s in domain.STATUSES) <= total


def test_the_demo_shop_can_be_turned_off_on_the_accounts_page(demo_on):
    at = open_app("app_pages/accounts.py")
    assert at.toggle(key="accounts_demo").value is True
    at.toggle(key="accounts_demo").set_value(False).run()
    assert at.dataframe[0].value.set_index("Name").loc["Demo Shop (sandbox)", "Status"] == "Disabled"
    at.switch_page("app_pages/returns.py").run()
    assert at.error[0].value == "No Active/Valid Accounts Found"


def test_returns_demo_0_means_no_demo_shop(app_db):
    at = open_app()
    assert at.sidebar.selectbox(key="account").options == ["All accounts"]
    assert at.error[0].value == "No Active/Valid Accounts Found"


def test_detail_fetches_tiktok_records_on_demand_and_re_syncs_the_return(demo_on):
    from returns_core import demo as demo_shop
    from returns_core import sync

    demo = demo_shop.ensure_demo_account(demo_on)
    assert sync.sync_account(demo_on, demo, trigger="test").error is None
    first = returns.grid_page(demo_on, return_filters.ReturnFilters(), limit=1).iloc[0]
    at = open_app("app_pages/detail.py", id=first["Marketplace Return ID"], shop=first["Account ID"])
    assert "Not fetched yet" in texts(at)
    at.button(key="detail_fetch_records").click().run()
    assert not at.exception
    assert any(s.value.startswith("Fetched") for s in at.success)
    assert "Not fetched yet" not in texts(at)
    at.button(key="detail_resync").click().run()
    assert any(s.value.startswith("Re-synced") for s in at.success)


def test_a_database_held_too_long_by_another_process_is_one_readable_line(seeded, monkeypatch):
    from returns_core.store.db import StoreBusyError

    def busy(*_args, **_kwargs):
        raise StoreBusyError("The database app.duckdb is busy: another process (a sync?) has held it for over 30 s. "
                             "Try again in a moment.")

    monkeypatch.setattr(returns, "count_returns", busy)
    at = open_app()
    assert not at.exception
    assert any("is busy" in e.value for e in at.error)


def test_opening_a_row_keeps_the_account_view(seeded):
    at = open_app(account=ALPHA_LABEL)
    at.session_state["returns_grid"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    assert at.query_params["shop"] == ALPHA
    assert at.query_params["account"] == ALPHA_LABEL


def test_actions_column_offers_a_decision_only_while_tiktok_waits_for_the_seller(seeded):
    from app_ui.filters import DECIDE, OPEN

    frame = grid(open_app()).set_index("Marketplace Return ID")
    assert list(frame.loc["R1", "Actions"]) == [OPEN, DECIDE]  # pending refund with a seller deadline
    assert list(frame.loc["R3", "Actions"]) == [OPEN]  # refunded: nothing to decide


def test_actions_column_offers_a_decision_exactly_where_the_decision_panel_has_one(seeded):
    from app_ui.filters import DECIDE

    frame = grid(open_app())
    for rid, shop, actions in zip(frame["Marketplace Return ID"], frame["Account ID"], frame["Actions"], strict=True):
        stored = returns.find_return(seeded, rid, shop)
        approve, reject = domain.seller_decisions(stored["return_type"], stored["marketplace_status"],
                                                  stored["next_action"])
        assert (DECIDE in list(actions)) == bool(approve or reject), rid
    by_id = frame.set_index("Marketplace Return ID")
    # R2 (Accepted) and R4 (awaiting the buyer's parcel) have a Due By, but TikTok waits for no decision
    assert DECIDE not in list(by_id.loc["R2", "Actions"]) and DECIDE not in list(by_id.loc["R4", "Actions"])


def test_actions_column_opens_the_decision_panel_or_the_detail_page(seeded):
    from app_ui.filters import DECIDE, OPEN

    at = open_app()
    row = return_ids(at).index("R1")
    at.session_state["returns_action"] = {"row": row, "label": DECIDE}
    at.run()
    assert not at.exception
    assert any("**Return R1**" in m.value for m in at.markdown)
    assert "Review the request" in [b.label for b in at.button]

    at = open_app()
    at.session_state["returns_action"] = {"row": row, "label": OPEN}
    at.run()
    assert at.query_params["id"] == "R1"
    assert at.title[0].value == "Return R1"
