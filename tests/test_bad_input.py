"""Bad input from users and from TikTok: each gets a clear one-line error or is handled safely,
and a rejected input changes nothing in the store.

- the command line: unknown account, bad dates, bad --out, missing flags, absurd values;
- filters and search text: quotes, SQL, unicode, emoji, NUL, 10,000 characters (API and the app);
- TikTok payloads: unknown enums, missing and mistyped fields, junk entries, broken envelopes;
- page sizes: the grid's, the client's and the sandbox's;
- and all SQL is parameterised: a static check of returns_core/ (which is itself tested to fail).
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx
import pandas as pd
import pytest
from cryptography.fernet import Fernet
from streamlit.testing.v1 import AppTest

from returns_core import accounts as acc
from returns_core import cli
from returns_core.filters import FilterError, ReturnFilters
from returns_core.store import analytics, returns
from returns_core.store.db import Database, utcnow
from returns_core.store.return_writes import upsert_page
from returns_core.sync import sync_account
from returns_core.tiktok import errors
from returns_core.tiktok.client import TikTokClient
from returns_core.tiktok.sandbox import SANDBOX_APP_KEY, SANDBOX_APP_SECRET
from tests import ui_fixtures as ui
from tests.apptest import open_app, return_ids
from tests.conftest import ROOT
from tests.reliability import FAST_RETRY, all_tables, connect, steady_clock

DROP = "'; DROP TABLE returns; --"
EVIL = [
    "'", '"', "\\", "%", "_", "%_%", DROP, "\" OR 1=1 --", "1' OR '1'='1", "); DELETE FROM history; --",
    "Größe ß İ", "返品 理由", "📦🔥", "\u202etxt.exe", "a\x00b", "line\nbreak", " " * 5, "x" * 200,
]


ODD_RETURN = {
    "return_id": "900000000000000001", "order_id": "800000000000000001", "return_type": "REFUND",
    "return_status": "RETURN_OR_REFUND_REQUEST_PENDING", "return_reason_text": "Size 'too' \"small\" 📦",
    "return_tracking_number": "O'BRIEN-\"7\"-📦", "create_time": 1_767_225_600, "update_time": 1_767_225_600,
    "return_line_items": [{"return_line_item_id": "1", "seller_sku": "SKU'; DROP TABLE returns; --"}]}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, str]:
    """The UI fixture store (two shops, eight returns) plus one return full of awkward characters."""
    key = Fernet.generate_key().decode()
    db = Database(tmp_path_factory.mktemp("template") / "returns.duckdb", key=key)
    ui.seed_store(db)
    upsert_page(db, ui.ALPHA, [ODD_RETURN], synced_at=utcnow())
    db.checkpoint()
    return db.path, key


@pytest.fixture
def store_key(template) -> str:
    return template[1]


@pytest.fixture
def store(template, tmp_path) -> Database:
    """A fresh copy of the template store for this test."""
    path = tmp_path / "returns.duckdb"
    shutil.copyfile(template[0], path)
    return Database(path, key=template[1])


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got: {text!r}"
    assert "Traceback" not in text
    return lines[0]


# --- the command line -------------------------------------------------------------------------------


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def other_files(folder: Path) -> list[str]:
    """Files in `folder` other than the store's own (its WAL comes and goes with each open)."""
    return sorted(p.name for p in folder.rglob("*") if not p.name.startswith("returns.duckdb"))


CLI_REJECTS = [
    (["sync", "--account", "no such shop"], 1, "no account named 'no such shop'"),
    (["sync", "--account", DROP], 1, "no account named"),
    (["accounts", "disable", "nope"], 1, "no account named 'nope'"),
    (["accounts", "add", "x" * 1000, "--app-key", "k", "--app-secret", "s", "--access-token", "a",
      "--refresh-token", "r"], 2, "too long"),
    (["accounts", "add", "Shop", "--app-key", "k"], 2, "--app-secret is required"),
    (["accounts", "add", "Shop", "--app-key", "k", "--app-secret", "s", "--access-token", "a"], 2,
     "--refresh-token is required"),
    (["accounts", "add", "Shop", "--app-secret", "s"], 2, "required: --app-key"),
    (["accounts", "add", "Shop", "--app-key", "k", "--app-secret", "s", "--access-token", "a", "--auth-code", "c"],
     2, "not allowed with"),
    (["export"], 2, "required: --out"),
    (["export", "--out", "{tmp}/returns.txt"], 2, "must end in .csv, .xlsx or .parquet"),
    (["export", "--out", "{tmp}/returns"], 2, "must end in .csv, .xlsx or .parquet"),
    (["export", "--out", "{tmp}/missing/folder/returns.csv"], 2, "does not exist"),
    (["export", "--out", "{tmp}/r.csv", "--created-from", "2026-02-30"], 2, "not a date; use YYYY-MM-DD"),
    (["export", "--out", "{tmp}/r.csv", "--created-to", "yesterday"], 2, "not a date; use YYYY-MM-DD"),
    (["export", "--out", "{tmp}/r.csv", "--created-from", "2026-03-01", "--created-to", "2026-01-01"], 2,
     "backwards"),
    (["export", "--out", "{tmp}/r.csv", "--type", "Teleport"], 2, "unknown type 'teleport'"),
    (["export", "--out", "{tmp}/r.csv", "--status", DROP], 2, "unknown status"),
    (["export", "--out", "{tmp}/r.csv", "--account", "nope"], 1, "no account named 'nope'"),
    (["export", "--out", "{tmp}/r.csv", "--search", "x" * 10_000], 2, "search text is too long"),
    (["backup", "--out", "{tmp}"], 1, "not empty"),
    (["backup"], 2, "required: --out"),
    (["sandbox", "serve", "--port", "99999"], 2, "--port must be 0-65535"),
    (["sandbox", "serve", "--returns", "-5"], 2, "--returns must be 0 or more"),
    (["sandbox", "serve", "--port", "eighty"], 2, "invalid int value"),
    (["teleport"], 2, "invalid choice"),
    ([], 2, "required"),
]


@pytest.mark.parametrize(("argv", "status", "says"), CLI_REJECTS, ids=[" ".join(a)[:40] for a, _, _ in CLI_REJECTS])
def test_bad_command_lines_get_one_line_and_change_nothing(store, store_key, tmp_path, capsys, monkeypatch, argv,
                                                           status, says):
    monkeypatch.setenv("RETURNS_DESK_KEY", store_key)
    (tmp_path / "keep.txt").write_text("an existing file")
    before = all_tables(store)
    files_before = other_files(tmp_path)
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, out, err = run_main(["--db", str(store.path), *args] if args else [], capsys)
    assert code == status, err
    line = one_line(err)
    assert line.startswith("error: ") and says.lower() in line.lower(), line
    assert "unexpected" not in line
    assert all_tables(store) == before
    assert other_files(tmp_path) == files_before, "a rejected command left a file behind"


def test_an_absurd_date_is_accepted_as_a_bound_not_a_crash(store, tmp_path, capsys, monkeypatch, store_key):
    monkeypatch.setenv("RETURNS_DESK_KEY", store_key)
    out = tmp_path / "all.csv"
    code, stdout, err = run_main(["--db", str(store.path), "export", "--out", str(out), "--created-from", "0001-01-01",
                                  "--created-to", "9999-12-31"], capsys)
    assert code == 0, err
    assert stdout.strip() == f"Exported 9 return(s) to {out}"
    assert len(pd.read_csv(out)) == 9


def test_paths_with_quotes_work_for_export_and_backup(store, tmp_path, capsys, monkeypatch, store_key):
    """COPY and EXPORT DATABASE take no parameters: the path is quoted as a SQL literal, so it must be escaped."""
    monkeypatch.setenv("RETURNS_DESK_KEY", store_key)
    folder = tmp_path / "it's a \"folder\"; DROP TABLE returns; --"
    folder.mkdir()
    code, _, err = run_main(["--db", str(store.path), "export", "--out", str(folder / "o'brien.csv")], capsys)
    assert code == 0, err
    assert len(pd.read_csv(folder / "o'brien.csv")) == 9
    code, _, err = run_main(["--db", str(store.path), "backup", "--out", str(folder / "audit 'x'")], capsys)
    assert code == 0, err
    assert json.loads((folder / "audit 'x'" / "manifest.json").read_text())["row_counts"]["returns"] == 9


def test_a_store_path_that_is_no_database_is_one_line(tmp_path, capsys):
    junk = tmp_path / "notes.duckdb"
    junk.write_text("this is not a database\n" * 100)
    for target, status, says in ((junk, 1, "is not a Returns Desk store"), (tmp_path, 2, "is a folder")):
        code, _, err = run_main(["--db", str(target), "accounts", "list"], capsys)
        assert code == status
        assert one_line(err).startswith("error: ") and says in err
    assert junk.read_text() == "this is not a database\n" * 100


@pytest.mark.parametrize("argv", [
    ["sync", "--account", "ghost"],
    ["export", "--out", "/nonexistent-dir/x.csv"],
    ["export", "--out", "x.csv", "--created-from", "31/12/2025"],
], ids=["unknown account", "bad folder", "bad date"])
def test_as_a_real_process_bad_input_is_one_line_and_a_nonzero_exit(store, store_key, cli_env, argv):
    env = {**cli_env, "RETURNS_DESK_KEY": store_key}
    proc = subprocess.run([sys.executable, "-m", "returns_core", "--db", str(store.path), *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode in (1, 2)
    assert one_line(proc.stderr).startswith("error: ")
    assert proc.stdout == ""


# --- filters and search text ------------------------------------------------------------------------


def test_evil_search_text_and_filter_values_are_values_not_sql(store, tmp_path):
    before = all_tables(store)
    for text in EVIL:
        everywhere = ReturnFilters(shop_ids=(text,), types=(text,), statuses=(text,), marketplace_statuses=(text,),
                                   reasons=(text,), reason_codes=(text,), skus=(text,), review_outcomes=(text, ""))
        for f in (ReturnFilters(search=text), everywhere):
            page = returns.grid_page(store, f, sort_by="Reason", descending=False)
            assert returns.count_returns(store, f) == len(page), text
            assert sum(returns.status_counts(store, f).values()) == len(page), text
            assert analytics.kpis(store, f).returns == len(page), text
            analytics.reason_frequency(store, f)
            analytics.top_skus(store, f)
            assert returns.export_returns(store, f, tmp_path / "out.csv") == len(page), text
    assert all_tables(store) == before


@pytest.mark.parametrize(("text", "expected"), [
    ("O'BRIEN-\"7", ["900000000000000001"]),  # the tracking number's start (letters alone are no tracking number)
    ('"7"-📦', ["900000000000000001"]),
    ("DROP TABLE", ["900000000000000001"]),  # the SKU holds that text; found, not run
    (DROP, ["900000000000000001"]),
    ("TRK111", ["R1"]),
    ("' OR '1'='1", []),
    ("%", []),
    ("_", []),
], ids=repr)
def test_search_finds_awkward_text_literally(store, text, expected):
    assert list(returns.grid_page(store, ReturnFilters(search=text))["Marketplace Return ID"]) == expected


def test_quotes_and_emoji_in_a_reason_filter_match_exactly(store):
    page = returns.grid_page(store, ReturnFilters(reasons=("Size 'too' \"small\" 📦",)))
    assert list(page["Marketplace Return ID"]) == ["900000000000000001"]


def test_the_builders_put_every_user_value_in_the_parameters_never_in_the_sql():
    marker = "ZZ9'\"%_;--📦"  # with a digit, so the search tries it on every column it may be in
    filters = ReturnFilters(shop_ids=(marker,), types=(marker,), statuses=(marker,), marketplace_statuses=(marker,),
                            reasons=(marker,), reason_codes=(marker,), skus=(marker,), review_outcomes=(marker,),
                            search=marker)
    sql, params = returns.where_clause(filters)
    assert marker not in sql and "ZZ" not in sql and marker.lower() not in sql
    assert params.count(marker) >= 9 and params.count(marker.lower()) == 2  # search matches in any case
    sql, params = returns.export_select(filters, sort_by="Reason")
    assert "ZZ" not in sql and marker in params
    with pytest.raises(FilterError, match="Cannot sort by"):
        returns.export_select(filters, sort_by="1; DROP TABLE returns")


@pytest.mark.parametrize("length", [201, 10_000])
def test_overlong_search_text_is_one_clear_error(length):
    with pytest.raises(FilterError) as refused:
        ReturnFilters(search="x" * length)
    assert str(refused.value) == f"Search text is too long ({length} characters; at most 200)."


@pytest.mark.parametrize(("kwargs", "says"), [
    ({"limit": 0}, "Page size must be between 1 and 500"),
    ({"limit": -1}, "Page size must be between 1 and 500"),
    ({"limit": 10**9}, "Page size must be between 1 and 500"),
    ({"offset": -1}, "Page offset cannot be negative"),
    ({"sort_by": "created_at; DROP TABLE returns"}, "Cannot sort by"),
])
def test_absurd_grid_paging_is_refused_clearly(store, kwargs, says):
    with pytest.raises(FilterError, match=re.escape(says)):
        returns.grid_page(store, ReturnFilters(), **kwargs)


def test_a_page_far_beyond_the_end_is_just_empty(store):
    page = returns.grid_page(store, ReturnFilters(), offset=10**12)
    assert page.empty and list(page.columns)[0] == "Marketplace Return ID"


def test_backwards_and_extreme_dates(store):
    with pytest.raises(FilterError, match="backwards"):
        ReturnFilters(created_from=date(2026, 3, 1), created_to=date(2026, 1, 1))
    everything = ReturnFilters(created_from=date.min, created_to=date.max, updated_from=date.min, updated_to=date.max)
    assert returns.count_returns(store, everything) == 9
    assert returns.count_returns(store, ReturnFilters(created_from=date.max)) == 0


# --- the app: the same inputs through the URL and the search box --------------------------------


@pytest.fixture
def app_store(store, store_key, monkeypatch) -> Database:
    monkeypatch.setenv("RETURNS_DB", str(store.path))
    monkeypatch.setenv("RETURNS_DESK_KEY", store_key)
    return store


def grid_ids(at: AppTest) -> list[str]:
    return return_ids(at)  # the grid's, not the "Waiting for you" list above it


URL_INPUTS = [
    ({"q": DROP}, ["900000000000000001"]),  # that SKU holds this very text
    ({"q": "📦🔥"}, []),
    ({"q": "O'BRIEN-\"7"}, ["900000000000000001"]),
    ({"q": "x" * 10_000}, []),  # the box keeps at most 200 characters
    ({"reason": DROP}, None),  # not an option: ignored
    ({"type": "Teleport", "status": "Bogus", "mstatus": "<script>alert(1)</script>"}, None),
    ({"created": "9999-12-31"}, None),
    ({"created": "garbage"}, None),
    ({"page": "-1", "size": "100000", "sort": "Bogus", "order": "sideways"}, None),
    ({"account": DROP}, None),
    ({"sku": "x" * 3000}, []),
]


@pytest.mark.parametrize(("query", "expected"), URL_INPUTS, ids=[repr(q)[:40] for q, _ in URL_INPUTS])
def test_links_with_junk_parameters_render_safely(app_store, query, expected):
    before = all_tables(app_store)
    at = open_app(**query)
    everything = sorted(r[1] for r in before["returns"])
    assert sorted(grid_ids(at)) == (everything if expected is None else expected)
    assert all_tables(app_store) == before


def test_typing_sql_into_the_search_box_finds_nothing_and_changes_nothing(app_store):
    before = all_tables(app_store)
    at = open_app()
    for text in (DROP, "' OR 1=1 --", '7"-📦', "O'BRIEN-\"7"):
        at.text_input(key="q").input(text).run()
        assert not at.exception, at.exception
        assert grid_ids(at) == ([] if text == "' OR 1=1 --" else ["900000000000000001"])
    assert all_tables(app_store) == before


# --- TikTok sending odd objects -------------------------------------------------------------------

ODD_OBJECTS = [
    {"return_id": "5001", "return_status": "BRAND_NEW_TIKTOK_STATUS", "return_type": "TELEPORT",
     "arbitration_status": "SOMETHING_ELSE", "update_time": 1_767_225_600, "create_time": 1_767_225_000},
    {"return_id": "5002"},  # nothing but the id
    {"return_id": 5003, "order_id": 77, "update_time": "1767225700", "create_time": "yesterday",
     "refund_amount": "lots", "return_line_items": "not a list", "seller_next_action_response": [{"deadline": "soon"}]},
    {"return_id": "5004", "refund_amount": {"currency": "USD", "refund_total": "1e30", "refund_tax": "abc",
                                            "refund_subtotal": "-5.5", "refund_shipping_fee": None},
     "return_line_items": [None, 3, {"seller_sku": "NO-ID"}, {"return_line_item_id": "L", "refund_amount": []}]},
    {"return_id": "5005", "return_reason_text": "理由 📦 'quoted' " + "long " * 2000, "update_time": -5,
     "create_time": 10**15},
    {"return_id": "5006", "update_time": 1_767_225_800_000},  # milliseconds by mistake
    {"order_id": "no return id"},
    None, 42, "a string", [], True,
    {"return_id": ""},
    {"return_id": {"nested": "dict"}},
]


def mock_tiktok(pages: list[dict]) -> httpx.MockTransport:
    """Answer Search Returns with these `data` objects in turn (code 0), the last one forever."""
    served = iter(pages)
    last: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/return_refund/202309/cancellations/search":  # the second queue: none here
            return httpx.Response(200, json={"code": 0, "message": "Success", "request_id": "r",
                                             "data": {"total_count": 0, "next_page_token": ""}})
        assert request.url.path == "/return_refund/202309/returns/search"
        data = next(served, None) or last[0]
        last[:] = [data]
        return httpx.Response(200, json={"code": 0, "message": "Success", "request_id": "r", "data": data})

    return httpx.MockTransport(handler)


@pytest.fixture
def mock_account(db):
    ui.add_account(db, ui.ALPHA, ui.ALPHA_NAME)
    return acc.get_account(db, ui.ALPHA)


def test_odd_return_objects_are_stored_safely_and_junk_is_skipped(db, mock_account):
    page = {"total_count": len(ODD_OBJECTS), "next_page_token": "", "return_orders": ODD_OBJECTS}
    result = sync_account(db, mock_account, transport=mock_tiktok([page]), trigger="test", retry=FAST_RETRY)
    assert result.ok, result.error
    assert result.new == 6
    with db.reader() as con:
        rows = {r[0]: r[1:] for r in con.execute(
            "SELECT return_id, marketplace_status, status, unmapped, type, arbitration_status, order_id, created_at, "
            "updated_at, refund_total, refund_tax, refund_subtotal, due_by, reason_text FROM returns").fetchall()}
        items = con.execute("SELECT return_id, return_line_item_id, seller_sku FROM return_line_items "
                            "ORDER BY 1, 2").fetchall()
        watermark = con.execute("SELECT watermark FROM sync_state").fetchone()[0]
    assert sorted(rows) == ["5001", "5002", "5003", "5004", "5005", "5006"]
    # a status or type TikTok adds later is kept verbatim and flagged, never guessed
    assert rows["5001"][:5] == ("BRAND_NEW_TIKTOK_STATUS", None, True, "TELEPORT", "SOMETHING_ELSE")
    assert rows["5002"][:2] == (None, None) and rows["5002"][6:] == (None,) * 7
    assert rows["5003"][5] == "77" and rows["5003"][6] is None and rows["5003"][7] is not None
    assert rows["5004"][8:11] == (None, None, Decimal("-5.5"))  # 1e30 does not fit DECIMAL(18,4): not stored
    assert rows["5005"][12].startswith("理由 📦 'quoted' ") and len(rows["5005"][12]) > 10_000
    assert rows["5005"][6:8] == (None, None)
    assert items == [("5004", "#1", "NO-ID"), ("5004", "L", None)]  # an item without an id gets its position
    # only readable update_times move the watermark: not -5, not a millisecond value from the year 57,000
    assert watermark == 1_767_225_700


def test_an_unknown_status_in_a_later_sync_keeps_our_status_and_flags_it(db, mock_account):
    first = {"return_id": "6001", "return_status": "AWAITING_BUYER_SHIP", "update_time": 1_767_225_600}
    later = {**first, "return_status": "SOMETHING_TIKTOK_INVENTED", "update_time": 1_767_229_200}
    for obj in (first, later):
        page = {"total_count": 1, "next_page_token": "", "return_orders": [obj]}
        assert sync_account(db, mock_account, transport=mock_tiktok([page]), trigger="test").ok
    with db.reader() as con:
        assert con.execute("SELECT marketplace_status, status, unmapped FROM returns").fetchone() == (
            "SOMETHING_TIKTOK_INVENTED", "Pending", True)


BROKEN_ENVELOPES = [
    ({"return_orders": "not a list", "total_count": 1}, "unreadable"),
    ({"return_orders": [], "total_count": "many"}, "unreadable"),
    ({"return_orders": [], "total_count": 1, "next_page_token": 12345}, "unreadable"),
]


@pytest.mark.parametrize(("data", "says"), BROKEN_ENVELOPES, ids=[repr(d)[:40] for d, _ in BROKEN_ENVELOPES])
def test_a_broken_answer_stops_the_sync_readably_and_changes_nothing(db, mock_account, data, says):
    before = all_tables(db)
    result = sync_account(db, mock_account, transport=mock_tiktok([data]), trigger="test", retry=FAST_RETRY)
    assert result.error and says in result.error.lower() and "\n" not in result.error
    after = all_tables(db)
    assert after.pop("sync_runs")[-1][6] == "failed"  # the run is logged as failed...
    before.pop("sync_runs")
    assert after == before  # ...and nothing else changed
    assert acc.get_account(db, ui.ALPHA).status == acc.ACTIVE


def test_a_server_repeating_its_page_token_cannot_loop_the_sync_forever(db, mock_account):
    page = {"total_count": 1000, "next_page_token": "same",
            "return_orders": [{"return_id": "7001", "update_time": 1_767_225_600}]}
    result = sync_account(db, mock_account, transport=mock_tiktok([page]), trigger="test", retry=FAST_RETRY)
    assert result.error and "repeated a page token" in result.error
    assert result.pages <= 3
    with db.reader() as con:
        assert con.execute("SELECT return_id FROM returns").fetchall() == [("7001",)]


@pytest.mark.parametrize(("body", "code"), [
    (b"{\"code\": \"zero\", \"data\": {}}", None),
    (b"[1, 2, 3]", None),
    (b"{\"code\": 0, \"data\": [1]}", None),
    (b"", None),
    (b"\xff\xfe not utf-8", None),
])
def test_an_answer_that_is_not_an_envelope_is_malformed_not_a_crash(db, mock_account, body, code):
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    result = sync_account(db, mock_account, transport=transport, trigger="test", retry=FAST_RETRY)
    assert result.error and "unreadable answer" in result.error and "\n" not in result.error


# --- absurd page sizes against the client and the sandbox -------------------------------------------


@pytest.mark.parametrize("size", [0, 9, 51, 10**9, -1, True, "50", 50.0, None])
def test_the_client_refuses_page_sizes_tiktok_does_not_allow(size):
    client = TikTokClient("k", "s", "t", shop_cipher="c", transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    with pytest.raises(ValueError, match="page_size must be an integer from 10 to 50"):
        client.search_returns(page_size=size)


def test_the_sandbox_refuses_absurd_page_sizes_like_tiktok(make_sandbox, db):
    sandbox = make_sandbox(shops=1, returns=20, wall_clock=steady_clock())
    with sandbox.serve() as server:
        account, tokens = connect(db, sandbox, server.url)
        with TikTokClient(SANDBOX_APP_KEY, SANDBOX_APP_SECRET, tokens.access_token, tokens.refresh_token,
                          account.shop_cipher, api_base=server.url, auth_base=server.url, retry=FAST_RETRY) as client:
            for size in ["0", "51", "100000", "-1", "abc", "1e3", "", "５０", "²", "1²"]:
                with pytest.raises(errors.ParameterError) as refused:  # sent raw, past the client's own check
                    client._call("POST", "/return_refund/202309/returns/search", {"page_size": size}, {})
                assert "page_size must be a whole number from 10 to 50" in str(refused.value)
            assert len(client.search_returns(page_size=10).return_orders) == 10  # and the sandbox is fine after


# --- all SQL is parameterised ------------------------------------------------------------------------

# What may be built into SQL text in returns_core/. Everything else must be a `?` parameter.
# - names and attributes, per file: identifiers and fragments chosen from fixed lists, or produced by
#   the builders below (whose own f-strings this same check reads);
SQL_ALLOWED_NAMES: dict[str, set[str]] = {
    "accounts.py": {"_SELECT", "where"},  # a fixed column list; a choice of two fixed conditions
    # the query builder (store/returns.py); overdue and due_soon come from domain.deadline_sql
    "returns.py": {"alias", "column", "col", "name", "direction", "where", "sql", "fmt", "CAN_DECIDE", "overdue",
                   "due_soon", "expr",  # expr: an export column, a fixed name wrapped by fixed functions
                   "table", "count"},  # _counted's fixed table and count
    # the SQL twin of the spreadsheet rule: a column expression and two fixed patterns
    "spreadsheet.py": {"expr", "clean", "_CONTROL_SQL", "_FORMULA_START_SQL"},
    # the SQL twins of the rules: an alias, and fixed statuses and actions each put in a literal by sql_literal
    "domain.py": {"alias", "closed", "implied", "action", "decidable"},
    "analytics.py": {"base", "where", "lines", "sql", "key", "name", "value", "column", "order", "money", "item",
                     "detail", "running", "measure.column", "NO_REASON", "NO_SKU",
                     "skus",  # skus: a fixed list() aggregate, or nothing
                     # fixed row sources and fragments: the returns' or a daily table's rows (its fixed name),
                     # a weight column, counted conditions, the spike window's two placeholders
                     "rows", "alias", "only", "condition", "returns_base", "per_return", "window", "counted",
                     "daily", "products", "table", "weight",
                     "_RATE_SQL",  # the return rate's fixed columns (its constants are parameters)
                     "_SKU_LEVELS"},  # the spike counts' fixed SKU and SKU × reason rows
    # store/rollups.py: its temporary tables' fixed names, a daily table's name, keys and sums (schema.ROLLUPS),
    # the fixed row columns, and the SELECT of the returns written (fixed text from its two callers, with its own
    # placeholders)
    "rollups.py": {"_BEFORE", "_ROWS", "ROLLUP_ROW_COLUMNS", "returns_sql", "table", "key", "same_key", "_ADD[table]",
                   "contribution.format(rows=ALL_RETURNS)", "contribution.format(rows=_ROWS)"},
    "reason_groups.py": {"key", "whens", "code", "text", "joined"},
    "backup.py": {"t", "out.name"},  # table names read from the catalog; a file name in the manifest's help text
    # the tables and columns the catalog names (Database.holds_secrets); one_return_sql's fixed table,
    # column list and order from its callers
    "db.py": {"table", "column", "columns", "order_by"},
    # a fixed condition on the shop ids, with a placeholder each; one of two fixed watermark expressions
    "sync_runs.py": {"where", "new_value", "column"},
    # store/rules.py: a rule's conditions (a placeholder per value), fixed fragments (kinds, actors and statuses
    # put in literals by sql_literal, JSON paths), the deadline SQL from domain.deadline_sql
    "rules.py": {"alias", "where", "window", "marks", "kinds", "machines", "flag", "normalized", "overdue", "missed",
                 "moved_at", "deadline", "rejected", "joined", "expr", "_RULE_SELECT"},
    # fixed statements, shared by migrations, test fixtures and store/rollups.py, and their fixed column lists
    "schema.py": {"FILL_LINES_SQL", "_DAY", '", ".join(_DAY_KEY)', "ROLLUP_ROW_COLUMNS", "_FILL_ALL", "table",
                  "contribution.format(rows=ALL_RETURNS)"},
    # fixed column lists and conditions with their own placeholders; the deadline SQL from domain.deadline_sql
    "alerts.py": {"_RETURN_COLUMNS", "ahead", "late", "ended", "due[0]", "_AUTH_EXPIRY"},
    # placeholder lists and fixed conditions, each with a ? per value
    "webhook_events.py": {"marks", "where", "sql", '" AND ".join(where)',
                          "', '.join('?' * len(notification_ids))", "', '.join('?' * len(states))",
                          "', '.join('?' * len(event_types))"},
}
# - calls to these SQL builders (fixed fragments; sql_literal, _sql_path and _sql_text double the quotes of the
#   one text each puts in a literal: file paths for COPY and EXPORT DATABASE, which take no parameters);
SQL_BUILDERS = {"_select_list", "_order_by", "_value_sql", "_count_sql", "_share_sql", "group_sql",
                "responsibility_sql", "normalize_sql", "sql_literal", "_sql_path", "_sql_text", "_pareto",
                "closed_sql", "can_decide_sql", "stored_can_decide_sql",  # the SQL twins of domain's rules
                "safe_cell_sql",  # the SQL twin of the spreadsheet rule
                "_reason_key", "touched_by_person_sql",  # store/rules.py: fixed fragments over an alias
                "deadline_unseen_sql"}
# - placeholder lists and joins of fixed column lists, by their exact source.
SQL_ALLOWED_EXPRESSIONS = {
    "', '.join('?' * len(values))", "', '.join('?' * len(named))", "', '.join('?' * len(f.skus))",
    "', '.join('?' * len(shop_ids))", "', '.join(['(?, ?)'] * len(keys))", "', '.join(cols)",
    "', '.join(_ACCOUNT_COLUMNS)", "' AND '.join(conds)",
    "_COLUMN_BY_NAME[sort_by]",  # a lookup in the fixed column map (unknown names are refused first)
    '", ".join(f"{c} = excluded.{c}" for c in _TIKTOK_COLUMNS)',
}
_SQL_WORDS = re.compile(
    r"\b(SELECT|INSERT|UPDATE|DELETE|WHERE|FROM|COPY|EXPORT|IMPORT|CREATE|DROP|ALTER|ORDER BY|GROUP BY|JOIN|"
    r"VALUES|SET|IN|AND|OR|NOT|AS|IS|EXISTS|CASE|WHEN|THEN|DESC|ASC|LIMIT|OFFSET|LIKE|BETWEEN)\b|[=(,]\s*\?")


def _is_sql(text: str) -> bool:
    return bool(_SQL_WORDS.search(text))


def sql_interpolations(source: str) -> list[tuple[int, str, ast.expr]]:
    """(line, source, node) of every value built into SQL text: f-strings, .format, % and + on SQL strings."""
    tree = ast.parse(source)
    found: list[tuple[int, str, ast.expr]] = []

    def text_of(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            return "".join(v.value for v in node.values if isinstance(v, ast.Constant))
        return None

    def add(node: ast.expr) -> None:
        found.append((node.lineno, ast.get_source_segment(source, node), node))

    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and _is_sql(text_of(node) or ""):
            for value in node.values:
                if isinstance(value, ast.FormattedValue):
                    add(value.value)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"
              and _is_sql(text_of(node.func.value) or "")):
            add(node)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and _is_sql(text_of(node.left) or ""):
            add(node.right)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            for side, other in ((node.left, node.right), (node.right, node.left)):
                if _is_sql(text_of(side) or "") and text_of(other) is None and not isinstance(other, ast.BinOp):
                    add(other)
    return found


def sql_allowed(file: str, source: str, node: ast.expr) -> bool:
    if source in SQL_ALLOWED_EXPRESSIONS or source in SQL_ALLOWED_NAMES.get(file, set()):
        return True
    if isinstance(node, ast.Call):
        callee = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        return callee in SQL_BUILDERS
    return False


def test_the_sql_check_catches_values_built_into_sql():
    bad = '''
con.execute(f"SELECT * FROM returns WHERE return_id = '{term}'")
con.execute("SELECT * FROM returns WHERE reason_text = '%s'" % reason)
con.execute("DELETE FROM returns WHERE shop_id = '{}'".format(shop))
con.execute("SELECT * FROM returns WHERE order_id = '" + order + "'")
con.execute(f"SELECT * FROM returns r WHERE {where} AND r.reason_text = '{f.reasons[0]}'")
con.execute("SELECT * FROM returns WHERE return_id = ?", [term])
'''
    found = {(source, sql_allowed("returns.py", source, node)) for _, source, node in sql_interpolations(bad)}
    formatted = "\"DELETE FROM returns WHERE shop_id = '{}'\".format(shop)"
    assert found == {("term", False), ("reason", False), (formatted, False), ("order", False), ("where", True),
                     ("f.reasons[0]", False)}


def test_all_sql_in_returns_core_is_parameterised():
    package = ROOT / "returns_core"
    offenders = []
    for path in sorted(package.rglob("*.py")):
        source = path.read_text()
        if "tiktok" in path.relative_to(package).parts:
            # the HTTP client and the sandbox: no database in there at all
            assert "duckdb" not in source and ".execute(" not in source, path
            continue
        for line, expr, node in sql_interpolations(source):
            if not sql_allowed(path.name, expr, node):
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {expr}")
    assert not offenders, ("values built into SQL text (use ? parameters, or add a reviewed entry to "
                           "SQL_ALLOWED_*):\n" + "\n".join(offenders))
