"""AppTest: every page of the app, on a small store whose content is fully known (tests/ui_fixtures.py)."""

from __future__ import annotations

import csv
import json
import re
import threading
from datetime import date, datetime, timedelta
from urllib.parse import parse_qs

import pytest

from app_ui import filters as app_filters
from app_ui import formatting
from returns_core import domain, jobs
from returns_core import filters as return_filters
from returns_core import sample_data as sample
from returns_core.explain import REAUTH_REASON, FailureKind
from returns_core.store import returns, sync_runs
from returns_core.store.db import Database, utcnow
from tests import ui_fixtures as ui
from tests.apptest import grid, metric, new_session, open_app, return_ids, run_until, sidebar_text, texts
from tests.reliability import side_by_side
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
    # the seed's columns in their order; the shop by its name (its ID stays in exports)
    assert list(frame.columns[:9]) == [name if name != "Account ID" else "Account" for name in domain.SEED_COLUMNS]
    assert list(frame.columns[9:]) == ["Refund Total", "Due By", "Flags", "Actions"]
    assert list(frame["Marketplace Return ID"]) == ["R8", "R7", "R6", "R5", "R4", "R3", "R2", "R1"]
    row = frame.set_index("Marketplace Return ID").loc["R2"]
    assert (row["Type"], row["Account"], row["Refund Total"]) == ("Return & Refund", ALPHA_NAME, "20.00 USD")


def test_grid_shows_tiktoks_status_in_words_with_the_verbatim_value_in_the_header_help_and_exports(seeded, tmp_path):
    at = open_app()
    frame = grid(at).set_index("Marketplace Return ID")
    assert frame.loc["R1", "Marketplace Status"] == "Request awaits seller"
    assert frame.loc["R3", "Marketplace Status"] == "Refunded"
    assert frame.loc["R8", "Marketplace Status"] == "BRAND_NEW_TIKTOK_STATUS"  # unknown: verbatim, never guessed
    assert frame.loc["R8", "Flags"] == app_filters.FLAG_UNMAPPED
    header = grid_column_help(at, "Marketplace Status")
    assert "Request awaits seller: `RETURN_OR_REFUND_REQUEST_PENDING`" in header
    assert re.search(rf"{ALPHA_NAME}: `\s?{ALPHA}\s?`", grid_column_help(at, "Account"))  # the shop's ID on hover
    out = tmp_path / "all.csv"
    returns.export_returns(seeded, return_filters.ReturnFilters(), out)
    exported = {row["Marketplace Return ID"]: row for row in csv.DictReader(out.open(encoding="utf-8"))}
    assert exported["R1"]["Marketplace Status"] == "RETURN_OR_REFUND_REQUEST_PENDING"
    assert exported["R1"]["Account ID"] == ALPHA


def grid_column_help(at, column: str, key: str = "returns_grid") -> str:
    """The help (hover text) of a column's header in the grid."""
    table = next(d for d in at.dataframe if d.proto.id.endswith(key))
    return json.loads(table.proto.columns)[column]["help"]


def status_counts(at) -> dict[str, int]:
    """The count beside each Status ("Requested **1** · Pending **1** · …" under the Status pills)."""
    line = next(c.value for c in at.caption if c.value.startswith(domain.STATUSES[0]))
    return {name: int(count.replace(",", "")) for name, count in re.findall(r"(\w+) \*\*([\d,]+)\*\*", line)}


def filter_summary(at) -> str:
    """The one line above the folded filters: how many, and what is active."""
    return next(m.value for m in at.markdown if m.value.startswith(":material/filter_alt:"))


def test_status_counts_are_shown_per_status_under_the_other_filters(seeded):
    at = open_app()
    assert filter_summary(at) == ":material/filter_alt: **8** returns · no filters"
    assert [status_counts(at)[s] for s in domain.STATUSES] == [1, 1, 2, 1, 1, 1]
    assert any("1 returns have a TikTok status we do not know yet" in c.value for c in at.caption)  # R8
    at.multiselect(key="type").set_value([domain.REFUND]).run()
    assert filter_summary(at) == ":material/filter_alt: **4** returns · Type: Refund"
    assert status_counts(at)[domain.ACCEPTED] == 1


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
    assert frame.loc["R1", "Due By"].startswith("🟠 ")  # due in 5 h
    assert frame.loc["R4", "Due By"].startswith("🔴 ")  # 2 h past
    assert frame.loc["R2", "Due By"][0].isdigit()  # in 48 h: the time alone
    assert frame.loc["R3", "Due By"] == ""  # no deadline


def close_past_its_deadline(db: Database, return_id: str = "R5") -> None:
    """R5 is Rejected: give it the passed Due By a closed case may keep from its last wait."""
    with db.writer() as con:
        con.execute("UPDATE returns SET due_by = ? WHERE return_id = ?", [utcnow() - timedelta(hours=3), return_id])


def test_a_closed_return_past_its_deadline_is_not_overdue_in_the_sidebar_or_the_grid(seeded):
    close_past_its_deadline(seeded)
    at = open_app()
    assert metric(at, "Overdue") == "1"  # R4 only
    assert grid(at).set_index("Marketplace Return ID").loc["R5", "Due By"][0].isdigit()  # its old time, no mark
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


def test_a_link_with_status_filters_reproduces_the_view(seeded):
    """Regression: with counts in the Status pills' labels, the address held "Accepted · 2", not "Accepted"."""
    query = return_filters.filters_to_query(return_filters.ReturnFilters(
        statuses=(domain.ACCEPTED,), marketplace_statuses=("RETURN_OR_REFUND_REQUEST_SUCCESS",)))
    at = open_app(**query)
    assert sorted(return_ids(at)) == ["R2", "R6"]
    assert at.pills(key="status").value == [domain.ACCEPTED]


def test_account_view_limits_every_number_to_that_shop(seeded):
    at = open_app(account=ALPHA_LABEL)
    assert at.sidebar.selectbox(key="account").value == ALPHA_LABEL
    assert sorted(return_ids(at)) == ["R1", "R2", "R3", "R4", "R5"]
    assert filter_summary(at).startswith(":material/filter_alt: **5** returns")
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
    [status] = [m for m in at.markdown if m.value.startswith(f"Status **{domain.ACCEPTED}** · TikTok: ")]
    assert "RETURN_OR_REFUND_REQUEST_SUCCESS" in status.proto.help  # verbatim, one hover away
    items = at.dataframe[0].value
    assert list(items["SKU"]) == ["SKU-BLUE"]
    body = re.sub(r"\\(.)", r"\1", texts(at))  # as a reader sees it: without Markdown's escapes
    assert "TRK222" in body and "20.00 USD" in body and "Wrong size" in body
    assert at.get("json"), "the raw payload is shown"


def test_detail_shows_a_deadline_only_on_an_open_return(seeded):
    close_past_its_deadline(seeded)
    rejected = texts(open_app("app_pages/detail.py", id="R5"))
    assert "Overdue by" not in rejected and "Due in" not in rejected  # its old Due By binds nobody now
    assert "Overdue by 2 h" in texts(open_app("app_pages/detail.py", id="R4"))


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
    assert "Status **Unmapped**" in texts(at)
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
    assert filter_summary(at) == ":material/filter_alt: **7** refund requests · no filters"
    assert status_counts(at)[domain.PENDING] == 0  # R4, the only Pending return, is a Return (replacement)


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


def test_adding_an_account_that_cannot_connect_fails_in_one_line_and_shows_no_secret(app_db):
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
    assert "very-secret-value" not in texts(at) and "access-token-value" not in texts(at)
    # issue 10: a failed connect keeps what was typed for the retry (secrets stay in their masked fields)
    assert at.text_input(key="accounts_add_app_secret").value == "very-secret-value"


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
    """A stand-in for TikTok behind sync.sync_accounts: each account reports one page, then is held until
    `release` is set."""
    from returns_core.sync import SyncProgress, SyncResult

    def sync_account(db, account, *, full=False, on_progress=None, trigger="cli", **_):
        if on_progress:
            on_progress(SyncProgress(1, new, 1, 0, 10, account=account.name, shop_id=account.shop_id))
        if release is not None:
            assert release.wait(60), "the test never let the sync finish"
        return SyncResult(account.shop_id, account.name, 1, new, 1, 0, 0.3, result_error, None, failure=failure)

    return side_by_side(sync_account)


def test_sync_returns_runs_in_the_background_then_shows_counts_and_a_toast(seeded, monkeypatch):
    release = threading.Event()
    monkeypatch.setattr("returns_core.sync.sync_accounts", fake_sync(new=3, release=release))
    at = open_app(account=ALPHA_LABEL)
    at.sidebar.button(key="sidebar_sync").click().run()
    assert not at.exception
    # held inside the sync: the page is usable, the button waits, the progress shows
    assert at.sidebar.button(key="sidebar_sync").disabled
    assert "synced" not in sidebar_text(at)
    release.set()
    run_until(at, lambda a: "synced" in sidebar_text(a))
    assert f"**{ALPHA_NAME}** synced 4 returns (1 page): 3 new, 1 updated, 0 unchanged." in sidebar_text(at)
    assert any("3 new" in t.value for t in at.toast)
    assert not at.sidebar.button(key="sidebar_sync").disabled


@pytest.mark.parametrize("finish_after_read", [1, 2, 3])
def test_a_finished_sync_and_the_sync_button_come_from_one_reading(seeded, monkeypatch, finish_after_read):
    """The sidebar never shows a finished sync beside a disabled button, whenever the sync ends."""
    release = threading.Event()
    monkeypatch.setattr("returns_core.sync.sync_accounts", fake_sync(new=2, release=release))
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
    monkeypatch.setattr("returns_core.sync.sync_accounts",
                        fake_sync(REAUTH_REASON, failure=FailureKind.AUTHORIZATION))
    at = open_app(account=ALPHA_LABEL)
    at.sidebar.button(key="sidebar_sync").click().run()
    run_until(at, lambda a: bool(a.sidebar.error))
    message = at.sidebar.error[0].value
    assert f"Sync of {ALPHA_NAME} failed" in message
    assert jobs.RECONNECT_ADVICE in message
    assert "Traceback" not in message


def test_sync_returns_for_all_accounts_syncs_every_active_one(seeded, monkeypatch):
    monkeypatch.setattr("returns_core.sync.sync_accounts", fake_sync())
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
    assert any("Press **Sync Returns**" in i.value for i in at.info)  # the empty state says what to do
    at.sidebar.button(key="sidebar_sync").click().run()
    run_until(at, lambda a: "synced" in sidebar_text(a), timeout=120)
    total = returns.count_returns(demo_on, return_filters.ReturnFilters())
    cancellations = returns.count_returns(demo_on, return_filters.ReturnFilters(types=(domain.CANCELLATION,)))
    assert total > 100 and 0 < cancellations < total
    # the demo shop has both queues: each kind is named, in the grid and in what the sync says it read
    both = f"**{total - cancellations:,}** returns and **{cancellations:,}** cancellations"
    assert filter_summary(at) == f":material/filter_alt: {both} · no filters"
    assert f"synced {both.replace('**', '')} (" in sidebar_text(at)
    assert len(return_ids(at)) == 50
    assert sum(status_counts(at).values()) <= total


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
    # the newest row may be a cancellation, depending on the sandbox's clock: ask for a return
    first = returns.grid_page(demo_on, return_filters.ReturnFilters(kinds=(domain.RETURN_KIND,)), limit=1).iloc[0]
    at = open_app("app_pages/detail.py", id=first["Marketplace Return ID"], shop=first["Account ID"])
    # the decision card fetched them as it opened: the buyer's own words and photos are in them
    assert "Not fetched yet" not in texts(at)
    assert any("Event" in d.value.columns for d in at.dataframe)
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
    for rid, actions in zip(frame["Marketplace Return ID"], frame["Actions"], strict=True):
        stored = returns.find_return(seeded, rid)
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
    assert "Review the decision" in [b.label for b in at.button]

    at = open_app()
    at.session_state["returns_action"] = {"row": row, "label": OPEN}
    at.run()
    assert at.query_params["id"] == "R1"
    assert at.title[0].value == "Return R1"


# --- Waiting for you, folded filters, context kept, local time ---------------------------------

WAITING_HOURS = {"W1": 30, "W2": 3, "W3": 50, "W4": -1, "W5": 10, "W6": 70, "W7": 20}  # R1 waits too: 5 h


def add_waiting(db: Database) -> None:
    """Seven more refund requests TikTok waits on the seller for, with these deadlines (hours from now)."""
    now = utcnow().replace(microsecond=0)
    sample.write_shop_returns(db, [(BETA, ui.return_object(rid, "REFUND", "RETURN_OR_REFUND_REQUEST_PENDING",
                                                           "Damaged item", "2026-04-01", hours, "3.00", "USD",
                                                           "SKU-W", None, now=now))
                                   for rid, hours in WAITING_HOURS.items()])


def test_waiting_for_you_lists_what_the_seller_must_decide_soonest_deadline_first(seeded):
    add_waiting(seeded)
    at = open_app()
    assert any(h.value.endswith("Waiting for you · 8") for h in at.subheader)
    waiting = grid(at, "waiting_grid")
    assert list(waiting["Marketplace Return ID"]) == ["W4", "W2", "R1", "W5", "W7"]  # the 5 soonest of 8
    assert waiting["Due By"].iloc[0].startswith("🔴 1 h ago · ")  # overdue
    assert waiting["Due By"].iloc[1].startswith("🟠 in 2 h · ") or waiting["Due By"].iloc[1].startswith("🟠 in 3 h")
    # the list waits on nothing else: every return in it is one TikTok waits on the seller for
    for rid in waiting["Marketplace Return ID"]:
        stored = returns.find_return(seeded, rid)
        assert domain.can_decide(stored["return_type"], stored["marketplace_status"], stored["next_action"])
    # "Show all" opens exactly those 8 in the list, soonest first, whatever was filtered before
    at.multiselect(key="type").set_value([domain.RETURN]).run()
    at.button(key="returns_show_waiting").click().run()
    assert return_ids(at) == ["W4", "W2", "R1", "W5", "W7", "W1", "W3", "W6"]
    assert at.toggle(key="waiting").value and at.multiselect(key="type").value == []
    assert (at.selectbox(key="sort").value, at.selectbox(key="order").value) == ("Due By", "Oldest / lowest first")
    assert any("Showing exactly the **8** returns waiting for your decision" in i.value for i in at.info)
    assert filter_summary(at).startswith(":material/filter_alt: **8** returns · Waiting for you · sorted by Due By")


def test_nothing_waiting_says_so(seeded):
    with seeded.writer() as con:  # R1, the only return TikTok waits on the seller for, gets its answer
        con.execute("UPDATE returns SET marketplace_status = 'RETURN_OR_REFUND_REQUEST_SUCCESS', "
                    "status = 'Accepted', can_decide = FALSE WHERE return_id = 'R1'")
    at = open_app()
    assert any(s.value.startswith("Nothing waits for your decision") for s in at.success)
    assert not any(d.proto.id.endswith("waiting_grid") for d in at.dataframe)


def test_filters_fold_away_behind_a_summary_and_clear_filters_clears_them_all(seeded):
    at = open_app()
    assert [e.label for e in at.expander] == ["Filters and sort"]
    folded = at.expander[0]
    assert {w.key for w in (*folded.text_input, *folded.multiselect, *folded.toggle, *folded.selectbox)} >= {
        "q", "sku", "type", "reason", "mstatus", "waiting", "due", "overdue", "flagged", "arbitration", "sort",
        "order", "size"}
    assert at.button(key="returns_clear").disabled  # nothing to clear
    at.multiselect(key="type").set_value([domain.REFUND]).run()
    at.toggle(key="due").set_value(True).run()
    at.selectbox(key="sort").set_value("Refund Total").run()
    assert return_ids(at) == ["R1", "R6"]
    assert filter_summary(at) == (":material/filter_alt: **2** returns · Type: Refund · Due within 24 h · "
                                  "sorted by Refund Total, newest / highest first")
    at.button(key="returns_clear").click().run()
    assert sorted(return_ids(at)) == [f"R{i}" for i in range(1, 9)]
    assert filter_summary(at) == (":material/filter_alt: **8** returns · sorted by Refund Total, newest / "
                                  "highest first · no filters")
    assert at.selectbox(key="sort").value == "Refund Total"  # the sort is not a filter: it stays


def sidebar_link(at, label_icon: str) -> dict[str, list[str]]:
    """The query of the sidebar's "Show them" link with this icon."""
    link = next(p for p in at.sidebar.get("page_link") if p.proto.icon == label_icon)
    return parse_qs(link.proto.query_string)


def follow(at, query: dict[str, list[str]], page: str = "app_pages/returns.py"):
    """Follow a link in the same browser session: its query parameters, then its page."""
    for key in list(at.query_params):
        del at.query_params[key]
    for key, values in query.items():
        at.query_params[key] = values if len(values) > 1 else values[0]
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def test_show_them_shows_exactly_the_returns_the_sidebar_counts(seeded):
    """Regression: "Show them" added its flag to the current filters (the sidebar said 32, the grid showed 6)."""
    at = open_app()
    at.multiselect(key="type").set_value([domain.RETURN]).run()  # R4 only: not due soon
    at.text_input(key="q").input("R").run()
    assert metric(at, f"Due in {domain.DUE_SOON_HOURS} h") == "2"
    follow(at, sidebar_link(at, ":material/schedule:"))
    assert sorted(return_ids(at)) == ["R1", "R6"]  # exactly the 2 counted, none of the filters before
    assert at.multiselect(key="type").value == [] and at.text_input(key="q").value == ""
    assert any("Showing exactly the **2** returns due within 24 h" in i.value for i in at.info)
    assert "show" not in at.query_params  # an instruction, not a state: a reload keeps the view, not the notice
    follow(at, sidebar_link(at, ":material/alarm:"))
    assert return_ids(at) == ["R4"] and metric(at, "Overdue") == "1"


def test_back_to_returns_from_a_return_keeps_the_filters_sort_and_page(seeded):
    sample.write_shop_returns(seeded, sample.synthetic_returns(120, (ALPHA,)))  # 34 refunds: 2 pages of 25
    at = open_app(type=domain.REFUND, sort="Refund Total", order="Oldest / lowest first", size="25")
    at.pagination(key="page").set_value(2).run()
    before = return_ids(at)
    at.session_state["returns_grid"] = {"selection": {"rows": [3], "columns": [], "cells": []}}
    at.run()
    assert at.query_params["id"] == before[3]
    back = next(p for p in at.get("page_link") if p.proto.label == "Back to Returns")
    follow(at, parse_qs(back.proto.query_string))
    assert at.multiselect(key="type").value == [domain.REFUND]
    assert (at.selectbox(key="sort").value, at.selectbox(key="order").value) == ("Refund Total",
                                                                                  "Oldest / lowest first")
    assert at.selectbox(key="size").value == 25 and at.pagination(key="page").value == 2
    assert return_ids(at) == before


def test_browser_back_onto_the_list_restores_it_from_the_link_to_the_return(seeded):
    """Streamlit 1.67 pushes the return's query onto the list's address before the return's page, so
    Back lands on /?id=…&shop=…&back=…: the list restores itself from `back` and drops the rest."""
    at = open_app(type=domain.REFUND)
    at.session_state["returns_grid"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    opened = dict(at.query_params)
    assert set(opened) >= {"id", "shop", "back"}
    back_on_the_list = open_app(**opened)  # the list's page, with the return's query
    assert sorted(return_ids(back_on_the_list)) == ["R1", "R5", "R6", "R8"]
    assert back_on_the_list.multiselect(key="type").value == [domain.REFUND]
    assert not {"id", "shop", "back"} & set(back_on_the_list.query_params)


def test_times_are_shown_in_the_viewers_time_zone_and_named(seeded):
    def session(zone: str | None):
        at = new_session()
        if zone:
            at.context = {"timezone": zone}
        at.run()
        assert not at.exception, at.exception
        return at

    berlin = session("Europe/Berlin")
    synced_at = sync_runs.last_syncs(seeded)[ALPHA].succeeded_at  # stored in UTC
    in_berlin = formatting.in_zone(synced_at, "Europe/Berlin")
    sidebar = "\n".join(c.value for c in berlin.sidebar.caption)
    assert f" · {in_berlin.day} {in_berlin:%b}, {in_berlin:%H:%M} (Europe/Berlin)" in sidebar, sidebar
    assert "UTC" not in sidebar
    due = formatting.in_zone(returns.find_return(seeded, "R1")["due_by"], "Europe/Berlin")
    assert grid(berlin).set_index("Marketplace Return ID").loc["R1", "Due By"] == f"🟠 {due.day} {due:%b}, {due:%H:%M}"
    assert "Times in Europe/Berlin." in grid_column_help(berlin, "Created At")
    unknown = session(None)  # the browser did not say: UTC, and the page says so
    assert "Times in UTC (the browser did not tell its time zone)." in grid_column_help(unknown, "Created At")
    assert "(UTC)" in "\n".join(c.value for c in unknown.sidebar.caption)


def test_local_time_reads_like_a_person_writes_it():
    when = datetime(2026, 12, 14, 8, 30)  # stored: naive UTC
    now = datetime(2026, 12, 1)
    assert formatting.local_time(when, zone="Europe/Berlin", now=now) == "14 Dec, 09:30 (Europe/Berlin)"
    assert formatting.local_time(when, zone="America/New_York", now=now) == "14 Dec, 03:30 (America/New_York)"
    assert formatting.local_time(when, zone="UTC", now=datetime(2027, 1, 2)) == "14 Dec 2026, 08:30 (UTC)"
    assert formatting.local_time(None) == "—"


def test_the_empty_store_says_press_sync_returns_and_offers_it(app_db, monkeypatch):
    monkeypatch.setattr("returns_core.sync.sync_accounts", fake_sync(new=3))
    ui.add_account(app_db, ALPHA, ALPHA_NAME)
    at = open_app()
    [info] = at.info
    assert "Press **Sync Returns**" in info.value and "fetches every return of your shops from TikTok" in info.value
    assert not at.dataframe and not at.expander  # nothing to filter yet
    at.button(key="returns_sync").click().run()  # the same Sync as the sidebar's
    run_until(at, lambda a: "synced" in sidebar_text(a))


def test_sync_progress_counts_returns_and_results_replace_each_other(seeded, monkeypatch):
    release = threading.Event()
    monkeypatch.setattr("returns_core.sync.sync_accounts", fake_sync(new=3, release=release))
    at = open_app()
    at.sidebar.button(key="sidebar_sync").click().run()
    # both accounts sync side by side; each has reported its first page once the round is under way
    run_until(at, lambda a: all("4 of 10" in p.proto.text for p in a.sidebar.get("progress"))
              and len(a.sidebar.get("progress")) == 2)
    progress = [p.proto.text for p in at.sidebar.get("progress")]
    assert progress == [f"Syncing {ALPHA_NAME}: 4 of 10 returns (1 page)",
                        f"Syncing {ui.BETA_NAME}: 4 of 10 returns (1 page)"]
    release.set()
    run_until(at, lambda a: sidebar_text(a).count("synced") == 2)
    assert len(at.sidebar.success) == 1  # one box for both accounts, not one each
    at.sidebar.button(key="sidebar_sync").click().run()  # a second sync replaces the first one's lines
    run_until(at, lambda a: not at.sidebar.button(key="sidebar_sync").disabled and "synced" in sidebar_text(a))
    assert len(at.sidebar.success) == 1 and sidebar_text(at).count("synced") == 2


@pytest.mark.parametrize("back", ["returns?type=Nope&status=Weird&sort=Evil&size=7&page=-3",
                                  "returns?created=not-a-date", "nowhere?type=Refund", "%%%",
                                  "returns?q=" + "x" * 500])
def test_a_damaged_way_back_opens_the_list_as_it_is(seeded, back):
    at = open_app(id="R1", shop=ALPHA, back=back)
    assert len(return_ids(at)) == 8
    assert filter_summary(at) == ":material/filter_alt: **8** returns · no filters"
    assert not {"id", "shop", "back"} & set(at.query_params)


def test_a_return_opened_from_refunds_leads_back_to_refunds_as_they_were(seeded):
    at = open_app("app_pages/refunds.py")
    at.multiselect(key="type").set_value([domain.REFUND]).run()
    before = return_ids(at, "refunds_grid")
    assert sorted(before) == ["R1", "R5", "R6", "R8"]
    at.session_state["refunds_grid"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert at.query_params["id"] == before[0]
    back = next(p for p in at.get("page_link") if p.proto.label == "Back to Refunds")
    follow(at, parse_qs(back.proto.query_string), "app_pages/refunds.py")
    assert at.multiselect(key="type").value == [domain.REFUND]
    assert return_ids(at, "refunds_grid") == before
