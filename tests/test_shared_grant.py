"""One seller authorization for several shops: refreshed once, saved for all, never lost (issue 15: 1, 3, 6).

Everything talks real HTTP to the sandbox on 127.0.0.1, which, like TikTok, retires a refresh token
once it is used. `sandbox_accounts` connects every sandbox shop with one `accounts add`, so the
shops share one grant. A week passing (`sandbox.advance`) expires every access token.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import duckdb
import pytest
import streamlit as st

from returns_core import accounts as acc
from returns_core.connect import add_accounts_with_tokens
from returns_core.store.db import Database, StoreBusyError
from returns_core.sync import sync_account, sync_accounts
from returns_core.tiktok import errors
from returns_core.tiktok.client import TokenSet
from returns_core.tiktok.sandbox import SANDBOX_APP_KEY, SANDBOX_APP_SECRET
from returns_core.tiktok.sandbox.auth import ACCESS_TOKEN_TTL
from returns_core.tiktok_session import Grant, grant_file, tiktok_session
from tests.apptest import open_app, run_until
from tests.conftest import ROOT, wait_until
from tests.reliability import SearchGate

REFRESH_PATH = "/api/v2/token/refresh"
A_WEEK_LATER = ACCESS_TOKEN_TTL + 3600  # every access token issued before has expired


class Recorder:
    """Counts what the sandbox answered: token refreshes, and 105002 "access token expired"."""

    def __init__(self, sandbox):
        self._answer = sandbox.answer
        self._lock = threading.Lock()
        self.refreshes = 0
        self.expired = 0
        sandbox.answer = self._record  # the HTTP server asks the instance, so this takes effect at once

    def _record(self, method, path, *args, **kwargs):
        response = self._answer(method, path, *args, **kwargs)
        code = json.loads(response.body).get("code") if response.body.startswith(b"{") else None
        with self._lock:
            self.refreshes += path == REFRESH_PATH and code == 0
            self.expired += code == errors.TOKEN_EXPIRED
        return response


def statuses(db: Database) -> dict[str, str]:
    return {a.name: a.status for a in acc.list_accounts(db)}


def stored_grants(db: Database) -> list[tuple[str, int]]:
    with db.reader() as con:
        return con.execute("SELECT grant_id, count(*) FROM accounts GROUP BY 1").fetchall()


def connect_all(db: Database, sandbox, url: str, name: str = "Sandbox") -> list[acc.Account]:
    """Every sandbox shop, from one authorization, with one `accounts add`."""
    tokens = TokenSet.from_data(sandbox.issue_tokens())
    return add_accounts_with_tokens(db, name, SANDBOX_APP_KEY, SANDBOX_APP_SECRET, tokens.access_token,
                                    tokens.refresh_token, api_base=url, auth_base=url, is_sandbox=True, tokens=tokens)


def in_thread(target, *args, **kwargs) -> tuple[threading.Thread, list]:
    """Run target in a thread; the list gets its result, or the exception it raised."""
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(target(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


# --- 1. one authorization, several shops ------------------------------------------------------------


@pytest.mark.sandbox(shops=3, returns=40)
def test_shops_of_one_authorization_stay_valid_through_many_expiries(db, sandbox, sandbox_accounts):
    assert len(sandbox_accounts) == 3 and len(stored_grants(db)) == 1
    seen = Recorder(sandbox)
    for week in range(1, 6):
        sandbox.advance(A_WEEK_LATER)
        results = sync_accounts(db, trigger="test")
        assert [r.error for r in results] == [None, None, None], f"week {week}"
        assert set(statuses(db).values()) == {"Active"}, f"week {week}: {statuses(db)}"
        # the grant is refreshed once a week, through whichever shop met the expiry first
        assert seen.refreshes == week
    # shops sync side by side, so more than one may meet the expired token before the one refresh
    assert 5 <= seen.expired <= 15


@pytest.mark.sandbox(shops=3, returns=40)
def test_two_cli_syncs_and_the_app_refreshing_one_authorization_at_once_refresh_it_once(
        db, db_key, sandbox, sandbox_accounts, cli_env):
    cli_shop_1, cli_shop_2, app_shop = sandbox_accounts
    sandbox.advance(A_WEEK_LATER)
    seen = Recorder(sandbox)
    held = SearchGate(sandbox, let_through=0, path=REFRESH_PATH)  # TikTok answers no refresh until released
    env = {**cli_env, "RETURNS_DESK_KEY": db_key}
    clis = [subprocess.Popen([sys.executable, "-m", "returns_core", "--db", str(db.path), "sync", "--account", a.name],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for a in (cli_shop_1, cli_shop_2)]
    app, app_result = in_thread(sync_account, db, app_shop, trigger="app")
    try:
        # every one of them holds the old tokens and has been told they expired; one refresh is on its way
        wait_until(lambda: seen.expired >= 3, "all three syncs to meet the expired access token")
        assert held.wait_held(), "no sync asked TikTok for new tokens"
    finally:
        held.release()
    outputs = [p.communicate(timeout=120) for p in clis]
    app.join(120)
    for proc, (out, err) in zip(clis, outputs, strict=True):
        assert proc.returncode == 0, out + err
        assert "Traceback" not in err
    assert app_result[0].ok, app_result[0].error
    assert seen.refreshes == 1, "the authorization was refreshed more than once"
    assert set(statuses(db).values()) == {"Active"}, statuses(db)

    # what the store kept is the live authorization: another week, and every shop still syncs
    sandbox.advance(A_WEEK_LATER)
    assert all(r.ok for r in sync_accounts(db, trigger="test"))
    assert seen.refreshes == 2 and set(statuses(db).values()) == {"Active"}


@pytest.mark.sandbox(shops=2, returns=40)
def test_shops_connected_before_grants_were_recorded_are_linked_by_their_tokens(db, sandbox, sandbox_accounts):
    with db.writer() as con:  # what the upgrade to grants (migration 5) leaves: no account has a grant yet
        con.execute("UPDATE accounts SET grant_id = NULL")
    seen = Recorder(sandbox)
    sandbox.advance(A_WEEK_LATER)
    assert [r.error for r in sync_accounts(db, trigger="test")] == [None, None]
    assert seen.refreshes == 1 and set(statuses(db).values()) == {"Active"}
    assert [n for _, n in stored_grants(db)] == [2]


# --- 3. renewed tokens are never lost ---------------------------------------------------------------

HOLDER = textwrap.dedent("""
    import sys, duckdb
    con = duckdb.connect(sys.argv[1])  # as a long backup or export does
    print("holding", flush=True)
    sys.stdin.read()  # until the test closes our stdin
""")


def kept_file(db: Database) -> Path:
    [(grant_id, _)] = stored_grants(db)
    return grant_file(db, grant_id)


def assert_kept_safely(db: Database, secrets: list[str]) -> None:
    path = kept_file(db)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    raw = path.read_bytes()
    assert raw.strip(b"\0").strip(), "nothing is kept"
    assert not any(s.encode() in raw for s in secrets), "a token is kept in clear"


@pytest.mark.sandbox(shops=2, returns=40)
def test_tokens_renewed_while_another_process_holds_the_store_are_kept_and_used_on_the_next_run(
        tmp_path, db_key, sandbox, sandbox_server, cli_env):
    # the product waits 30 s for the store; the test waits 1 s for it
    db = Database(tmp_path / "returns.duckdb", key=db_key, lock_timeout=1)
    first, _ = connect_all(db, sandbox, sandbox_server.url)
    sandbox.advance(A_WEEK_LATER)
    seen = Recorder(sandbox)
    held = SearchGate(sandbox, let_through=0, path=REFRESH_PATH)
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    with tiktok_session(db, first) as client:
        call, outcome = in_thread(client.search_returns, page_size=10)
        assert held.wait_held(), "the expired token was not refreshed"
        # TikTok is renewing the tokens; meanwhile another process takes the store for longer than the wait
        holder = subprocess.Popen([sys.executable, str(script), str(db.path)], env=cli_env, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "holding"
            held.release()
            call.join(60)
        finally:
            holder.stdin.close()
            holder.wait(30)
    [error] = outcome
    [(grant_id, _)] = stored_grants(db)
    kept = Grant(db, grant_id, first.name).kept()
    new_tokens = (kept.access_token, kept.refresh_token)
    assert isinstance(error, StoreBusyError), error
    message = str(error)
    assert message.startswith(f"TikTok renewed the access of {first.name}, but the new tokens could not be saved")
    assert f"kept encrypted in {kept_file(db).name}" in message and "used on the next run" in message
    assert not any(t in message for t in new_tokens)
    assert seen.refreshes == 1
    assert_kept_safely(db, list(new_tokens))

    # the next run: the kept tokens are the live ones; nothing is refreshed again, every shop stays valid
    results = sync_accounts(db, trigger="test")
    assert [r.error for r in results] == [None, None]
    assert seen.refreshes == 1 and set(statuses(db).values()) == {"Active"}
    assert not kept_file(db).read_bytes().strip(b"\0"), "the store has them now: nothing waits"
    sandbox.advance(A_WEEK_LATER)
    assert all(r.ok for r in sync_accounts(db, trigger="test"))
    assert seen.refreshes == 2 and set(statuses(db).values()) == {"Active"}


@pytest.mark.sandbox(shops=2, returns=40)
def test_tokens_renewed_when_the_store_cannot_write_are_kept_and_used_on_the_next_run(
        db, sandbox, sandbox_accounts, monkeypatch):
    from returns_core.store import accounts as account_rows

    first = sandbox_accounts[0]
    sandbox.advance(A_WEEK_LATER)
    seen = Recorder(sandbox)
    real_save = account_rows.save_tokens

    def disk_full(*args, **kwargs):
        raise duckdb.IOException(f'IO Error: Could not write file "{db.path}.wal": No space left on device')

    monkeypatch.setattr(account_rows, "save_tokens", disk_full)
    result = sync_account(db, first, trigger="test")
    assert result.error.startswith(f"TikTok renewed the access of {first.name}, but the new tokens could not be "
                                   "saved in the store (IO Error: Could not write file")
    assert "No space left on device" in result.error and "used on the next run" in result.error
    assert seen.refreshes == 1
    assert statuses(db)[first.name] == "Active"  # nothing TikTok said is wrong with the authorization

    monkeypatch.setattr(account_rows, "save_tokens", real_save)  # space was freed
    assert [r.error for r in sync_accounts(db, trigger="test")] == [None, None]
    assert seen.refreshes == 1 and set(statuses(db).values()) == {"Active"}
    sandbox.advance(A_WEEK_LATER)
    assert all(r.ok for r in sync_accounts(db, trigger="test"))
    assert seen.refreshes == 2


@pytest.mark.sandbox(shops=1, returns=40)
def test_with_no_room_to_keep_new_tokens_the_refresh_token_is_not_spent(db, sandbox, sandbox_accounts, monkeypatch):
    [account] = sandbox_accounts
    sandbox.advance(A_WEEK_LATER)
    seen = Recorder(sandbox)

    def disk_full(fd, offset, length):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", disk_full)
    result = sync_account(db, account, trigger="test")
    assert result.error.startswith(f"Cannot renew TikTok's access for {account.name}: there is no room")
    assert "The current tokens are untouched" in result.error
    assert seen.refreshes == 0 and statuses(db)[account.name] == "Active"

    monkeypatch.undo()
    assert sync_account(db, account, trigger="test").ok
    assert seen.refreshes == 1


# --- 6. Invalid after a passing glitch --------------------------------------------------------------


@pytest.mark.sandbox(shops=1, returns=40)
def test_an_account_marked_invalid_by_a_glitch_is_valid_again_after_a_successful_call(app_db, sandbox, sandbox_server):
    [account] = connect_all(app_db, sandbox, sandbox_server.url)
    # right after a refresh, TikTok twice more says the access token expired: the account is marked Invalid
    sandbox.faults.inject("expire_token", count=2, path_prefix="/return_refund/")
    glitch = sync_account(app_db, account, trigger="test")
    assert glitch.error and statuses(app_db) == {account.name: "Invalid"}
    at = open_app()
    assert at.sidebar.button(key="sidebar_sync").disabled  # the app does not sync an Invalid account

    # a scheduled CLI sync a little later: TikTok answers, so the account is valid again
    assert sync_account(app_db, acc.get_account(app_db, account.shop_id), trigger="cli").ok
    assert statuses(app_db) == {account.name: "Active"}
    assert acc.get_account(app_db, account.shop_id).auth_error is None

    # and the app's Sync button includes it again, once the app sees the change (it polls every few seconds)
    st.cache_data.clear()
    at = open_app()
    assert not at.sidebar.button(key="sidebar_sync").disabled
    at.sidebar.button(key="sidebar_sync").click().run()
    run_until(at, lambda a: a.sidebar.success or a.sidebar.error)
    assert [str(s.value) for s in at.sidebar.success][0].startswith(f"**{account.name}** synced")


@pytest.mark.sandbox(shops=1, returns=40)
def test_a_refused_call_after_a_successful_one_leaves_the_account_invalid(db, sandbox, sandbox_accounts):
    [account] = sandbox_accounts
    acc.mark_invalid(db, account.shop_id, "revoked")
    with pytest.raises(errors.AuthError), tiktok_session(db, account) as client:
        client.search_returns(page_size=10)  # TikTok answers ...
        sandbox.revoke(client._access_token)
        client.search_returns(page_size=10)  # ... then refuses
    assert statuses(db) == {account.name: "Invalid"}
