"""Many shops synced together (issue 14): bounded fetching, one writer, failures isolated, one line each.

Over real HTTP against the sandbox, with the CLI where a user would run it.
"""

from __future__ import annotations

import threading
import time

import pytest

from returns_core import accounts as acc
from returns_core import cli
from returns_core.connect import add_accounts_with_tokens
from returns_core.explain import REAUTH_REASON
from returns_core.store.db import Database
from returns_core.sync import Overall, concurrency_setting, sync_accounts
from returns_core.tiktok.client import TokenSet
from returns_core.tiktok.sandbox import SANDBOX_APP_KEY, SANDBOX_APP_SECRET
from tests.conftest import wait_until
from tests.reliability import LOCK_TEXT, SearchGate, duplicates, run_cli, stored_payloads, truth_payloads


def connect_shops(db: Database, sandbox, url: str, shop_ids: list[str], name: str
                  ) -> tuple[list[acc.Account], TokenSet]:
    """These shops, from one authorization (one grant), as `accounts add` connects them; and its tokens."""
    tokens = TokenSet.from_data(sandbox.issue_tokens(shop_ids))
    return add_accounts_with_tokens(db, name, SANDBOX_APP_KEY, SANDBOX_APP_SECRET, tokens.access_token,
                                    tokens.refresh_token, api_base=url, auth_base=url, is_sandbox=True,
                                    tokens=tokens), tokens


@pytest.fixture
def agency(make_sandbox):
    """20 shops of 30 returns each, served over HTTP: (sandbox, server)."""
    sandbox = make_sandbox(shops=20, returns=30)
    with sandbox.serve() as server:
        yield sandbox, server


def test_one_shop_with_revoked_tokens_among_twenty_fails_alone_in_one_line(db, db_key, agency, monkeypatch, capsys):
    sandbox, server = agency
    ids = [shop["id"] for shop in sandbox.shops]
    connect_shops(db, sandbox, server.url, ids[1:], "Agency")
    [lone], lone_tokens = connect_shops(db, sandbox, server.url, ids[:1], "Lone")
    sandbox.revoke(lone_tokens.access_token)  # the seller of that one shop deauthorized the app

    monkeypatch.setenv("RETURNS_DESK_KEY", db_key)
    status = cli.main(["--db", str(db.path), "sync"])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert status == 1 and len(lines) == 20, lines
    failed = [line for line in lines if "FAILED" in line]
    assert len(failed) == 1 and failed[0].startswith(f"{lone.name}: 0 page(s), 0 new")
    assert failed[0].endswith(f"; FAILED: {REAUTH_REASON}")
    assert err.strip().splitlines()[-1] == "error: 1 of 20 account(s) failed to sync (see above)"
    synced = sum(len(truth_payloads(sandbox, shop_id)) for shop_id in ids[1:])
    assert f"20 of 20 shops, {synced:,} returns, 1 failed" in err  # the round's progress, on stderr
    assert "Traceback" not in err
    # the other 19 have exactly what TikTok has; the revoked one is marked for reconnecting
    for shop_id in ids[1:]:
        assert stored_payloads(db, shop_id) == truth_payloads(sandbox, shop_id)
    assert stored_payloads(db, ids[0]) == {}
    assert acc.get_account(db, lone.name).status == acc.INVALID
    assert all(v == 0 for v in duplicates(db).values())


def test_never_more_than_the_chosen_number_of_shops_fetch_at_once(db, agency):
    sandbox, server = agency
    connect_shops(db, sandbox, server.url, [shop["id"] for shop in sandbox.shops], "Agency")
    in_flight: dict[str, int] = {}
    most = [0]
    guard = threading.Lock()
    answer = sandbox.answer

    def counted(method, path, query, *args, **kwargs):
        cipher = dict(query).get("shop_cipher", "")
        with guard:
            in_flight[cipher] = in_flight.get(cipher, 0) + 1
            most[0] = max(most[0], sum(1 for n in in_flight.values() if n))
        try:
            if path.startswith("/return_refund/"):
                time.sleep(0.05)  # the network's time for a page: shops fetching together overlap here
            return answer(method, path, query, *args, **kwargs)
        finally:
            with guard:
                in_flight[cipher] -= 1

    sandbox.answer = counted  # the HTTP server asks the instance for every request
    heard: list[Overall] = []
    results = sync_accounts(db, concurrency=3, page_size=10, on_overall=heard.append, trigger="test")
    assert all(r.ok for r in results) and len(results) == 20
    assert most[0] == 3  # three shops at once, never a fourth
    total = sum(r.fetched for r in results)
    assert heard[-1] == Overall(20, 20, total, 0) and heard[-1].line() == f"20 of 20 shops, {total:,} returns"
    assert [o.done for o in heard] == sorted(o.done for o in heard)


def test_the_concurrency_is_a_setting_the_cli_checks_and_keeps(db, db_key, agency, monkeypatch, capsys):
    sandbox, server = agency
    connect_shops(db, sandbox, server.url, [sandbox.shops[0]["id"]], "One")
    monkeypatch.setenv("RETURNS_DESK_KEY", db_key)
    assert concurrency_setting(db) == 8
    for bad in (["--concurrency", "0"], ["--concurrency", "65"], ["--save-concurrency"]):
        assert cli.main(["--db", str(db.path), "sync", *bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), err
    assert concurrency_setting(db) == 8
    assert cli.main(["--db", str(db.path), "sync", "--concurrency", "3", "--save-concurrency"]) == 0
    assert concurrency_setting(db) == 3


def test_twenty_shops_syncing_beside_a_reading_app_never_meet_a_lock_error(db, db_key, agency, cli_env,
                                                                          store_reader):
    sandbox, server = agency
    ids = [shop["id"] for shop in sandbox.shops]
    connect_shops(db, sandbox, server.url, ids, "Agency")
    env = {**cli_env, "RETURNS_DESK_KEY": db_key}
    reader = store_reader(db, db_key, env)
    seen = reader.seen
    wait_until(lambda: seen, "the reader's first read")
    # the sandbox answers 10 shops' pages (one page each), then holds the round until the reader has
    # seen them committed
    gate = SearchGate(sandbox, let_through=10)
    sync = run_cli(db, env, "sync", "--concurrency", "8")
    try:
        assert gate.wait_held(), "the round never asked for more than 10 pages"
        wait_until(lambda: seen and seen[-1] > 0, "the reader to see the round in progress")
        assert seen[-1] < sum(len(truth_payloads(sandbox, shop_id)) for shop_id in ids)
    finally:
        gate.release()
    sync_out, sync_err = sync.communicate(timeout=180)
    report, reader_out, reader_err = reader.finish()

    assert sync.returncode == 0, sync_err
    assert report["errors"] == [] and reader.process.returncode == 0, reader_err
    for text in (sync_out, sync_err, reader_out, reader_err):
        assert LOCK_TEXT not in text and "Traceback" not in text
    assert report["counts"] == sorted(report["counts"])
    for shop_id in ids:
        assert stored_payloads(db, shop_id) == truth_payloads(sandbox, shop_id)


# --- several TikTok apps (an agency's apps share its shops) --------------------------------------------


def connect_app(db: Database, sandbox, url: str, app, name: str) -> list[acc.Account]:
    """Every shop of one sandbox app, connected with that app's keys and a code the app issued."""
    from returns_core.connect import add_accounts_with_auth_code

    code = sandbox.issue_auth_code(app_key=app.key)
    return add_accounts_with_auth_code(db, name, app.key, app.secret, code, api_base=url, auth_base=url)


@pytest.mark.sandbox(shops=6, returns=30, apps=3, app_rate_limit=1000)
def test_three_apps_each_see_their_own_shops_and_one_round_syncs_them_all(db, sandbox, sandbox_server):
    apps = sandbox.apps
    assert [len(app.shop_ids) for app in apps] == [2, 2, 2]
    assert len({app.key for app in apps}) == 3 and apps[0].key == SANDBOX_APP_KEY
    accounts = [account for n, app in enumerate(apps) for account in
                connect_app(db, sandbox, sandbox_server.url, app, f"App {n + 1}")]
    # each authorization covers its app's shops only
    assert sorted(a.shop_id for a in accounts) == sorted(shop["id"] for shop in sandbox.shops)

    started: list[str] = []
    results = sync_accounts(db, concurrency=3, trigger="test", on_start=lambda a: started.append(a.app_key))
    assert all(r.ok for r in results), [r.summary() for r in results]
    # the shops are started one app after the other in turn, so the three fetching at once are one per
    # app: one app slowed down by TikTok leaves the others going
    assert started == [app.key for app in apps] * 2
    for shop in sandbox.shops:
        assert stored_payloads(db, shop["id"]) == truth_payloads(sandbox, shop["id"])
    # TikTok counted each app's requests against that app's own budget
    assert set(sandbox.quota.allowed_by_app) == {app.key for app in apps}


def test_a_code_or_token_of_one_app_is_refused_with_another_apps_key(make_sandbox):
    from returns_core.tiktok import errors
    from returns_core.tiktok.client import AuthClient, TikTokClient

    sandbox = make_sandbox(shops=4, returns=10, apps=2)
    first, second = sandbox.apps
    transport = sandbox.transport()
    # an auth code of the second app, exchanged with the first app's keys
    code = sandbox.issue_auth_code(app_key=second.key)
    with pytest.raises(errors.TikTokError, match="not issued by this app"):
        AuthClient(first.key, first.secret, transport=transport).get_token(code)
    # the second app's tokens, sent with the first app's key: TikTok does not know them
    tokens = TokenSet.from_data(sandbox.issue_tokens(app_key=second.key))
    with TikTokClient(first.key, first.secret, tokens.access_token, tokens.refresh_token, "", transport=transport
                      ) as client, pytest.raises(errors.TikTokError, match="not issued by this app"):
        client.get_authorized_shops()
    with TikTokClient(second.key, second.secret, tokens.access_token, tokens.refresh_token, "",
                      transport=transport) as client:
        assert sorted(s["id"] for s in client.get_authorized_shops()) == sorted(second.shop_ids)
    # a shop of another app cannot be put in an app's authorization
    with pytest.raises(ValueError, match="not among the shops of app"):
        sandbox.issue_tokens([first.shop_ids[0]], app_key=second.key)


def test_the_sandbox_budget_is_per_app_so_one_app_refused_leaves_the_other_answered(make_sandbox):
    from returns_core.tiktok import errors
    from returns_core.tiktok.client import RetryPolicy, TikTokClient

    sandbox = make_sandbox(shops=2, returns=10, apps=2, app_rate_limit=3)
    clients = []
    for app in sandbox.apps:
        tokens = TokenSet.from_data(sandbox.issue_tokens(app_key=app.key))
        clients.append(TikTokClient(app.key, app.secret, tokens.access_token, tokens.refresh_token, "",
                                    transport=sandbox.transport(), retry=RetryPolicy(max_attempts=1)))
    busy, other = clients
    with busy, other:
        for _ in range(3):  # the first app spends its burst of one second's worth
            busy.get_authorized_shops()
        with pytest.raises(errors.TikTokError) as refused:
            busy.get_authorized_shops()
        assert refused.value.code == errors.TOO_MANY_REQUESTS
        other.get_authorized_shops()  # the second app's budget is its own
