"""Accounts: connect by tokens or auth code, one account per shop, reconnect, status, secrets at rest."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import httpx
import pytest

from returns_core import accounts as acc
from returns_core import connect as conn
from returns_core import demo as demo_shop
from returns_core.accounts import Account, AccountError, AccountNotFoundError
from returns_core.explain import REAUTH_REASON, FailureKind
from returns_core.tiktok import errors
from returns_core.tiktok.client import TokenSet
from returns_core.tiktok_session import save_tokens, tiktok_session

API = "https://api.example.test"
AUTH = "https://auth.example.test"
SHOPS = [
    {"id": "7001", "name": "Alpha UK", "region": "GB", "seller_type": "LOCAL", "cipher": "GCP_alpha", "code": "A1"},
    {"id": "7002", "name": "Beta US", "region": "US", "seller_type": "LOCAL", "cipher": "GCP_beta", "code": "B1"},
]
ACCESS = "TTP_access_plaintext_0123456789"
REFRESH = "TTP_refresh_plaintext_9876543210"
SECRET = "app_secret_plaintext_abcdef"


def fake_tiktok(shops: list[dict], *, refuse: bool = False) -> httpx.MockTransport:
    """Just enough of TikTok for connecting: authorized shops and token/get."""

    def handle(request: httpx.Request) -> httpx.Response:
        if refuse:
            return httpx.Response(401, json={"code": 36009004, "message": "Invalid access token",
                                             "request_id": "r1", "data": None})
        if request.url.path == "/authorization/202309/shops":
            return httpx.Response(200, json={"code": 0, "message": "Success", "request_id": "r",
                                             "data": {"shops": shops}})
        if request.url.path == "/api/v2/token/get":
            if request.url.params["auth_code"] != "GOOD":
                return httpx.Response(200, json={"code": 36004004, "message": "Invalid auth code",
                                                 "request_id": "r2", "data": None})
            now = 2_000_000_000
            return httpx.Response(200, json={"code": 0, "message": "success", "request_id": "r", "data": {
                "access_token": ACCESS, "access_token_expire_in": now, "refresh_token": REFRESH,
                "refresh_token_expire_in": now + 86400 * 300, "open_id": "o", "seller_name": "S",
                "seller_base_region": "GB", "user_type": 0, "granted_scopes": ["seller.return_refund.basic"]}})
        return httpx.Response(404, json={"code": 36009009, "message": "Invalid path", "request_id": "r"})

    return httpx.MockTransport(handle)


def connect(db, name="Main", shops=SHOPS, **kw) -> list[Account]:
    return conn.add_accounts_with_tokens(db, name, "appkey1", SECRET, ACCESS, REFRESH, api_base=API, auth_base=AUTH,
                                         transport=fake_tiktok(shops), **kw)


def test_one_shop_takes_the_name_as_given(db):
    [account] = connect(db, "Main", SHOPS[:1])
    assert (account.name, account.shop_id, account.shop_name, account.region, account.shop_cipher) == (
        "Main", "7001", "Alpha UK", "GB", "GCP_alpha")
    assert account.status == "Active" and account.enabled and not account.is_sandbox


def test_a_token_for_several_shops_adds_one_account_per_shop(db):
    added = connect(db, "Main")
    assert [a.name for a in added] == ["Main - Alpha UK", "Main - Beta US"]
    assert [a.name for a in acc.list_accounts(db)] == ["Main - Alpha UK", "Main - Beta US"]


def test_shop_cipher_limits_the_connection_to_that_shop(db):
    [account] = connect(db, "Beta", shop_cipher="GCP_beta")
    assert (account.name, account.shop_id) == ("Beta", "7002")
    with pytest.raises(AccountError, match="does not authorize a shop with that shop cipher"):
        connect(db, "Nope", shop_cipher="GCP_missing")


def test_a_shop_connected_under_another_name_is_refused_and_nothing_changes(db):
    connect(db, "Main", SHOPS[:1])
    with pytest.raises(AccountError, match="already connected as 'Main'"):
        connect(db, "Other", SHOPS[:1])
    assert [a.name for a in acc.list_accounts(db)] == ["Main"]


def test_a_name_used_by_another_shop_is_refused(db):
    connect(db, "Main", SHOPS[:1])
    with pytest.raises(AccountError, match="already used by shop 7001"):
        connect(db, "main", SHOPS[1:])


def test_reconnecting_the_same_name_updates_tokens_and_clears_invalid(db):
    [account] = connect(db, "Main", SHOPS[:1])
    acc.mark_invalid(db, account.shop_id, "revoked")
    assert acc.get_account(db, "Main").status == "Invalid"
    [again] = conn.add_accounts_with_tokens(db, "Main", "appkey1", SECRET, "TTP_new_access", "TTP_new_refresh",
                                            api_base=API, auth_base=AUTH, transport=fake_tiktok(SHOPS[:1]))
    assert again.status == "Active" and again.auth_error is None
    assert again.created_at == account.created_at
    with db.reader() as con:
        enc = con.execute("SELECT access_token_enc FROM accounts").fetchone()[0]
    assert db.box.decrypt(enc) == "TTP_new_access"


def test_auth_code_is_exchanged_and_expiry_is_kept(db):
    [account] = conn.add_accounts_with_auth_code(db, "Main", "appkey1", SECRET, "GOOD", api_base=API,
                                                 auth_base=AUTH, transport=fake_tiktok(SHOPS[:1]))
    assert account.access_token_expires_at == datetime(2033, 5, 18, 3, 33, 20)
    with pytest.raises(errors.AuthCodeInvalidError):
        conn.add_accounts_with_auth_code(db, "Other", "appkey1", SECRET, "USED", api_base=API, auth_base=AUTH,
                                         transport=fake_tiktok(SHOPS[1:]))


def test_refused_credentials_add_nothing(db):
    with pytest.raises(errors.AuthError):
        conn.add_accounts_with_tokens(db, "Main", "appkey1", SECRET, ACCESS, REFRESH, api_base=API, auth_base=AUTH,
                                      transport=fake_tiktok(SHOPS, refuse=True))
    assert acc.list_accounts(db) == []


def test_secrets_are_encrypted_at_rest_and_never_on_the_account(db):
    [account] = connect(db, "Main", SHOPS[:1])
    db.checkpoint()
    raw = db.path.read_bytes()
    for secret in (ACCESS, REFRESH, SECRET):
        assert secret.encode() not in raw
        assert secret not in repr(account) and secret not in repr(acc.list_accounts(db))
    with tiktok_session(db, account, transport=fake_tiktok(SHOPS[:1])) as client:
        assert SECRET not in repr(client) and ACCESS not in repr(client)
        assert client.get_authorized_shops()[0]["id"] == "7001"


def test_get_account_by_name_or_shop_id_and_unknown_is_one_line(db):
    connect(db, "Main", SHOPS[:1])
    assert acc.get_account(db, "7001").name == "Main"
    assert acc.get_account(db, "MAIN").shop_id == "7001"
    with pytest.raises(AccountNotFoundError) as caught:
        acc.get_account(db, "Nobody")
    assert "\n" not in str(caught.value) and "Nobody" in str(caught.value)


def test_disable_and_enable(db):
    connect(db, "Main", SHOPS[:1])
    assert acc.set_enabled(db, "Main", False).status == "Disabled"
    assert acc.set_enabled(db, "Main", True).status == "Active"


def test_status_words():
    now = datetime(2026, 1, 1)
    base = Account("1", "n", None, None, None, "k", API, AUTH, False, True, "ok", None, None, None, now, now)

    def status(**changes) -> str:
        from dataclasses import replace

        return replace(base, **changes).status_at(now)

    assert status() == "Active"
    assert status(enabled=False, auth_state="invalid") == "Disabled"
    assert status(auth_state="invalid") == "Invalid"
    assert status(refresh_token_expires_at=now - timedelta(seconds=1)) == "Expired"
    # an expired access token is fine while the refresh token can renew it
    assert status(access_token_expires_at=now - timedelta(days=1), refresh_token_expires_at=now + timedelta(1)) == (
        "Active")
    assert status(access_token_expires_at=now - timedelta(days=1), has_refresh_token=False) == "Expired"


def test_save_tokens_persists_rotated_tokens_encrypted(db):
    [account] = connect(db, "Main", SHOPS[:1])
    save_tokens(db, account.shop_id, TokenSet("TTP_rotated_access", "TTP_rotated_refresh", 2_000_000_000,
                                              2_100_000_000))
    with db.reader() as con:
        enc = con.execute("SELECT refresh_token_enc FROM accounts").fetchone()[0]
    assert "TTP_rotated_refresh" not in enc and db.box.decrypt(enc) == "TTP_rotated_refresh"
    assert acc.get_account(db, "Main").refresh_token_expires_at == datetime(2036, 7, 18, 13, 20)


def test_test_connection_marks_refused_accounts_invalid(db):
    [account] = connect(db, "Main", SHOPS[:1])
    result = conn.test_connection(db, account, transport=fake_tiktok(SHOPS, refuse=True))
    assert not result.ok and result.kind is FailureKind.AUTHORIZATION
    assert result.message.startswith("Authorization was revoked or expired")
    assert result.summary.startswith("Failed: Authorization was revoked or expired")
    assert acc.get_account(db, "Main").status == "Invalid"
    fine = conn.test_connection(db, account, transport=fake_tiktok(SHOPS))
    assert fine.ok and fine.kind is None and fine.summary.startswith("OK: TikTok accepts the token")
    assert acc.get_account(db, "Main").status == "Active"
    gone = conn.test_connection(db, account, transport=fake_tiktok(SHOPS[1:]))
    assert not gone.ok and gone.kind is FailureKind.AUTHORIZATION and gone.message.startswith("The token no")
    assert acc.get_account(db, "Main").status == "Invalid"


def refusing(message: str = "Invalid access token") -> httpx.MockTransport:
    """TikTok refusing every call with 36009004 (a revoked token, or a bad request time)."""
    return httpx.MockTransport(lambda request: httpx.Response(
        401, json={"code": errors.COMMON_PARAM_INVALID, "message": message, "request_id": "r1", "data": None}))


def test_a_session_that_tiktok_refuses_marks_the_account_invalid_and_re_raises(db):
    [account] = connect(db, "Main", SHOPS[:1])
    with pytest.raises(errors.AuthError), tiktok_session(db, account, transport=refusing()) as client:
        client.get_authorized_shops()
    after = acc.get_account(db, "Main")
    assert after.status == "Invalid" and after.auth_error == REAUTH_REASON


def test_a_refused_request_time_is_not_a_refused_authorization(db):
    [account] = connect(db, "Main", SHOPS[:1])
    with pytest.raises(errors.AuthError), tiktok_session(db, account, transport=refusing("Invalid timestamp")) as c:
        c.get_authorized_shops()
    assert acc.get_account(db, "Main").status == "Active"
    check = conn.test_connection(db, account, transport=refusing("Invalid timestamp"))
    assert not check.ok and check.kind is FailureKind.CLOCK
    assert acc.get_account(db, "Main").status == "Active"


def test_a_decision_tiktok_refuses_for_authorization_marks_the_account_invalid(db):
    from returns_core.workflow import ActionPlan, send_action

    [account] = connect(db, "Main", SHOPS[:1])
    plan = ActionPlan(account.shop_id, "R1", "approve", "APPROVE_REFUND")
    result = send_action(db, account, plan, "Mia", transport=refusing())
    assert not result.ok and "reconnect the shop" in result.message
    assert acc.get_account(db, "Main").status == "Invalid"


def test_failures_carry_their_kind_and_the_same_words():
    from returns_core.explain import Failure, explain, explain_error
    from returns_core.secretbox import SecretKeyError
    from returns_core.store.db import StoreBusyError

    cases = {
        errors.AuthError("Invalid access token", code=errors.COMMON_PARAM_INVALID): FailureKind.AUTHORIZATION,
        errors.AuthError("Invalid timestamp", code=errors.COMMON_PARAM_INVALID): FailureKind.CLOCK,
        errors.RateLimitedError("slow down", code=errors.TOO_MANY_REQUESTS): FailureKind.RATE_LIMITED,
        errors.ServerError("oops", code=errors.INTERNAL_ERROR): FailureKind.TIKTOK_DOWN,
        errors.TransportError("timed out"): FailureKind.NETWORK,
        errors.MalformedResponseError("not JSON"): FailureKind.TIKTOK_ERROR,
        errors.BusinessError("no", code=errors.DECISION_NOT_FIT): FailureKind.TIKTOK_ERROR,
        StoreBusyError("The database is busy"): FailureKind.BUSY,
        SecretKeyError("wrong key"): FailureKind.SECRET_KEY,
        AccountNotFoundError("No account named 'x'"): FailureKind.ACCOUNT,
        RuntimeError("first line\nsecond line"): FailureKind.UNEXPECTED,
    }
    for exc, kind in cases.items():
        failure = explain(exc)
        assert failure == Failure(kind, explain_error(exc)) and "\n" not in failure.message, exc
    assert explain(errors.AuthError("x", code=errors.SIGN_INVALID)).message.startswith(REAUTH_REASON)


def test_the_authorization_link_needs_no_client():
    assert conn.authorize_url("7123", "st ate") == (
        "https://services.tiktokshop.com/open/authorize?service_id=7123&state=st+ate")
    assert conn.authorize_url("7123", "s", us=True).startswith("https://services.us.tiktokshop.com/open/authorize?")


def test_empty_name_and_missing_secret_are_refused(db):
    with pytest.raises(AccountError, match="name"):
        connect(db, "  ", SHOPS[:1])
    with pytest.raises(AccountError, match="app secret"):
        conn.add_accounts_with_tokens(db, "x", "k", "", ACCESS, REFRESH, api_base=API, auth_base=AUTH,
                                      transport=fake_tiktok(SHOPS))


def test_no_error_message_carries_a_secret(db):
    [account] = connect(db, "Main", SHOPS[:1])
    acc.mark_invalid(db, account.shop_id, REAUTH_REASON)
    text = json.dumps([str(a) for a in acc.list_accounts(db)])
    assert ACCESS not in text and REFRESH not in text and SECRET not in text


# --- the demo shop ----------------------------------------------------------------------------------


@pytest.fixture
def small_demo(db, monkeypatch):
    """The demo shop's sandbox, smaller than the app's (same code path, quicker test)."""
    from returns_core.tiktok.sandbox import Sandbox

    monkeypatch.setenv("RETURNS_DEMO", "1")
    return demo_shop.demo_sandbox(db.path, factory=lambda **kw: Sandbox(**{**kw, "returns": 120}))


def test_demo_shop_is_created_once_in_an_empty_store_and_syncs_in_process(db, small_demo):
    from returns_core.sync import sync_account

    demo = demo_shop.ensure_demo_account(db)
    assert demo is not None
    assert (demo.name, demo.is_sandbox, demo.api_base, demo.status) == (
        "Demo Shop (sandbox)", True, "sandbox://demo", "Active")
    assert demo_shop.ensure_demo_account(db) is None  # never a second one
    assert demo_shop.demo_sandbox(db.path) is small_demo
    assert demo_shop.demo_state_path(db.path).exists()
    assert demo_shop.demo_state_path(db.path).name == "returns.sandbox.json"

    result = sync_account(db, demo)
    # the demo shop has both queues: its returns and its buyers' cancellations
    stored = len(small_demo.returns_for(demo.shop_id)) + len(small_demo.cancellations_for(demo.shop_id))
    assert result.ok and result.new == stored and small_demo.cancellations_for(demo.shop_id)
    assert conn.test_connection(db, demo).ok


def test_demo_shop_is_not_created_when_disabled_or_accounts_exist(db, monkeypatch):
    monkeypatch.setenv("RETURNS_DEMO", "0")
    assert demo_shop.ensure_demo_account(db) is None
    monkeypatch.setenv("RETURNS_DEMO", "1")
    connect(db, "Main", SHOPS[:1])
    assert demo_shop.ensure_demo_account(db) is None
    assert [a.name for a in acc.list_accounts(db)] == ["Main"]


def test_demo_setting_off_disables_the_demo(db, monkeypatch):
    monkeypatch.setenv("RETURNS_DEMO", "1")
    with db.writer() as con:
        con.execute("INSERT INTO settings VALUES ('demo_enabled', 'off', now())")
    assert demo_shop.ensure_demo_account(db) is None


def test_a_demo_shop_that_went_invalid_is_reconnected(db, small_demo):
    demo = demo_shop.ensure_demo_account(db)
    acc.mark_invalid(db, demo.shop_id, REAUTH_REASON)
    healed = demo_shop.ensure_demo_account(db)
    assert healed is not None and healed.shop_id == demo.shop_id and healed.status == "Active"
    assert conn.test_connection(db, healed).ok


# --- the Accounts page ------------------------------------------------------------------------------


def test_the_accounts_page_tests_a_connection_and_shows_a_refusal_as_a_failure(app_db, monkeypatch):
    from returns_core.tiktok.sandbox import Sandbox
    from tests.apptest import open_app

    monkeypatch.setenv("RETURNS_DEMO", "1")
    sandbox = demo_shop.demo_sandbox(app_db.path, factory=lambda **kw: Sandbox(**{**kw, "returns": 60}))
    demo = demo_shop.ensure_demo_account(app_db)
    at = open_app("app_pages/accounts.py")
    at.button(key="accounts_test").click().run()
    assert shown(at.success)[0].startswith("OK: TikTok accepts the token")

    with tiktok_session(app_db, demo) as client:
        tokens = (client._access_token, client._refresh_token)
    for token in tokens:
        sandbox.revoke(token)
    at.button(key="accounts_test").click().run()
    assert not at.exception
    assert shown(at.error)[0].startswith(f"Failed: {REAUTH_REASON}")
    assert at.dataframe[0].value.set_index("Name").loc[demo.name, "Status"] == "Invalid"


# --- names: one rule for the CLI and the Accounts page (issue 15, item 14) --------------------------


def never_called() -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"TikTok was asked ({request.url.path}) although the input was refused")

    return httpx.MockTransport(handle)


@pytest.mark.parametrize("char", sorted(acc.BIDI_CONTROLS), ids=lambda c: f"U+{ord(c):04X}")
def test_a_name_with_text_direction_characters_is_refused_before_tiktok_is_asked(db, char):
    name = f"Main{char}kcab"
    refused = f"invisible characters that change how it reads \\(U\\+{ord(char):04X}\\)"
    with pytest.raises(acc.AccountInputError, match=refused):
        conn.add_accounts_with_tokens(db, name, "appkey1", SECRET, ACCESS, REFRESH, api_base=API, auth_base=AUTH,
                                      transport=never_called())
    with pytest.raises(acc.AccountInputError, match="invisible characters"):
        conn.add_accounts_with_auth_code(db, name, "appkey1", SECRET, "GOOD", api_base=API, auth_base=AUTH,
                                         transport=never_called())
    assert acc.list_accounts(db) == []


def test_a_shop_name_from_tiktok_loses_text_direction_characters_in_the_account_name(db):
    shops = [{**SHOPS[0], "name": "Alpha\u202eKU"}, SHOPS[1]]
    added = connect(db, "Main", shops)
    assert [a.name for a in added] == ["Main - AlphaKU", "Main - Beta US"]


def test_the_command_line_refuses_such_a_name_in_one_line(db, db_key, monkeypatch, capsys):
    from returns_core import cli

    monkeypatch.setenv("RETURNS_DESK_KEY", db_key)
    code = cli.main(["--db", str(db.path), "accounts", "add", "Shop\u2067A", "--app-key", "k", "--app-secret", "s",
                     "--access-token", "t", "--refresh-token", "r", "--api-base", "http://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: The account name contains invisible characters") and \
        err.count("\n") == 1 and "U+2067" in err


# --- connecting says which credential is wrong (issue 10, Build 8) -----------------------------------


@pytest.fixture
def one_shop(sandbox_server, sandbox):
    """The served sandbox with its one shop (marker below), and the CLI to connect it."""
    return sandbox_server.url


def cli_add(monkeypatch, capsys, db, key, *args) -> tuple[int, str]:
    from returns_core import cli

    monkeypatch.setenv("RETURNS_DESK_KEY", key)
    code = cli.main(["--db", str(db.path), "accounts", "add", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.sandbox(shops=1, returns=10)
def test_each_refused_credential_gets_its_own_sentence(db, db_key, sandbox, one_shop, monkeypatch, capsys):
    from returns_core import explain as ex
    from returns_core.tiktok.sandbox import SANDBOX_APP_KEY, SANDBOX_APP_SECRET
    from tests.conftest import free_port

    url = one_shop
    tokens = sandbox.issue_tokens()
    where = ["--api-base", url, "--auth-base", url]

    def add(name: str, *, key: str = SANDBOX_APP_KEY, secret: str = SANDBOX_APP_SECRET, code: str | None = None,
            access: str | None = None, base: list[str] = where) -> tuple[int, str]:
        creds = ["--auth-code", code] if code else ["--access-token", access or tokens["access_token"],
                                                    "--refresh-token", tokens["refresh_token"]]
        return cli_add(monkeypatch, capsys, db, db_key, name, "--app-key", key, "--app-secret", secret, *creds, *base)

    said = {
        "wrong app secret (tokens)": add("A", secret="not-the-secret"),
        "wrong app secret (code)": add("A", secret="not-the-secret", code=sandbox.issue_auth_code()),
        "wrong app key": add("A", key="no-such-app"),
        "wrong access token": add("A", access="TTP_forged"),
        "used authorization code": add("A", code="TTP_never_issued"),
        "unreachable host": add("A", base=["--api-base", f"http://127.0.0.1:{free_port()}"]),
    }
    expected = {
        "wrong app secret (tokens)": ex.APP_SECRET_REFUSED, "wrong app secret (code)": ex.APP_CREDENTIALS_REFUSED,
        "wrong app key": ex.APP_KEY_REFUSED, "wrong access token": ex.ACCESS_TOKEN_REFUSED,
        "used authorization code": ex.AUTH_CODE_REFUSED,
        "unreachable host": ex.UNREACHABLE.split(" (")[0],
    }
    for case, (status, text) in said.items():
        assert status == 1 and text.startswith(f"error: {expected[case]}") and text.count("\n") == 1, (case, text)
        assert "not-the-secret" not in text and "TTP_forged" not in text
    assert acc.list_accounts(db) == []

    shop = sandbox.shops[0]
    assert add("Main") == (0, f"Added account 'Main': shop {shop['name']} ({shop['id']}, {shop['region']}), "
                              "status Active\n")
    status, text = add("Other")
    assert status == 1 and text.startswith(f"error: Shop {shop['name']} ({shop['id']}) is already connected as "
                                           "'Main': to renew its authorization, reconnect 'Main'")
    assert len(set(expected.values())) == len(expected)  # each its own sentence


# --- the Accounts page: a failed connect keeps what was typed; a duplicate costs no code ------------


def fill(at, prefix: str, **values: str) -> None:
    for field, value in values.items():
        at.text_input(key=f"{prefix}_{field}").input(value)


def typed(at, prefix: str, *fields: str) -> dict[str, str]:
    return {field: at.text_input(key=f"{prefix}_{field}").value for field in fields}


def shown(elements) -> list[str]:
    return [str(e.value).replace("\\", "") for e in elements]  # as shown: Markdown escapes removed


def page_errors(at) -> list[str]:
    return shown(at.error)


@pytest.mark.sandbox(shops=1, returns=10)
def test_a_failed_connect_keeps_what_was_typed_and_the_fixed_retry_connects(app_db, sandbox, sandbox_server):
    from returns_core import explain as ex
    from returns_core.tiktok.sandbox import SANDBOX_APP_KEY, SANDBOX_APP_SECRET
    from tests.apptest import open_app

    url, code = sandbox_server.url, sandbox.issue_auth_code()
    at = open_app("app_pages/accounts.py")
    entered = {"name": "Main", "app_key": SANDBOX_APP_KEY, "app_secret": "wrong-secret", "code": code,
               "api_base": url, "auth_base": url}
    fill(at, "accounts_oauth", **entered)
    at.button(key="FormSubmitter:accounts_add_oauth-Exchange the code and connect").click().run()
    assert not at.exception, at.exception
    assert page_errors(at)[0].startswith(f"Could not connect: {ex.APP_CREDENTIALS_REFUSED}")
    assert typed(at, "accounts_oauth", *entered) == entered, "the form was cleared after a failed connect"

    at.text_input(key="accounts_oauth_app_secret").input(SANDBOX_APP_SECRET)  # fix the one wrong field
    at.button(key="FormSubmitter:accounts_add_oauth-Exchange the code and connect").click().run()
    assert not at.exception and not page_errors(at), page_errors(at)
    assert shown(at.success)[0].startswith("Connected: Main (")
    assert typed(at, "accounts_oauth", "name", "app_secret", "code") == {"name": "", "app_secret": "", "code": ""}
    assert [a.name for a in acc.list_accounts(app_db)] == ["Main"]


@pytest.mark.sandbox(shops=1, returns=10)
def test_a_taken_name_is_refused_before_the_code_is_spent_and_a_shop_connected_again_is_renewed(
        app_db, sandbox, sandbox_server):
    from returns_core.tiktok.sandbox import SANDBOX_APP_KEY, SANDBOX_APP_SECRET
    from tests.apptest import open_app

    url = sandbox_server.url
    [main] = conn.add_accounts_with_auth_code(app_db, "Main", SANDBOX_APP_KEY, SANDBOX_APP_SECRET,
                                              sandbox.issue_auth_code(), api_base=url, auth_base=url)
    code = sandbox.issue_auth_code()  # the seller authorized the app again
    at = open_app("app_pages/accounts.py")
    fill(at, "accounts_oauth", name="main", app_key=SANDBOX_APP_KEY, app_secret=SANDBOX_APP_SECRET, code=code,
         api_base=url, auth_base=url)
    at.button(key="FormSubmitter:accounts_add_oauth-Exchange the code and connect").click().run()
    assert page_errors(at)[0].startswith("Could not connect: An account named 'Main' exists already: to give it new "
                                         "credentials use Reconnect")

    # the code was not spent: the same code connects under another name, and since TikTok says it is
    # Main's shop again, Main is renewed with it rather than the code wasted
    at.text_input(key="accounts_oauth_name").input("Second")
    at.button(key="FormSubmitter:accounts_add_oauth-Exchange the code and connect").click().run()
    assert not at.exception and not page_errors(at), page_errors(at)
    said = shown(at.success)[0]
    assert said.startswith(f"Connected: Main ({main.shop_id})")
    assert "Main was already connected: it now uses this new authorization" in said
    assert [a.name for a in acc.list_accounts(app_db)] == ["Main"]
    with pytest.raises(errors.AuthCodeInvalidError, match="already used"):  # it was spent once, by the renewal
        conn.add_accounts_with_auth_code(app_db, "Third", SANDBOX_APP_KEY, SANDBOX_APP_SECRET, code, api_base=url,
                                         auth_base=url)


def test_the_accounts_page_refuses_a_text_direction_name_and_keeps_the_form(app_db):
    from tests.apptest import open_app

    at = open_app("app_pages/accounts.py")
    entered = {"name": "Shop\u202eA", "app_key": "k", "app_secret": "s", "access": "TTP_a", "refresh": "TTP_r",
               "api_base": "http://127.0.0.1:9", "auth_base": "http://127.0.0.1:9"}
    fill(at, "accounts_add", **entered)
    at.button(key="FormSubmitter:accounts_add_tokens-Connect").click().run()
    assert not at.exception, at.exception
    assert page_errors(at)[0].startswith("Could not connect: The account name contains invisible characters that "
                                         "change how it reads (U+202E)")
    assert typed(at, "accounts_add", *entered) == entered
    assert acc.list_accounts(app_db) == []


@pytest.mark.parametrize(("exc", "sentence"), [
    (errors.AuthError("Invalid credentials. The `sign` query parameter is invalid.", code=errors.SIGN_INVALID),
     "APP_SECRET_REFUSED"),
    (errors.AuthError("Invalid app_key or app_secret.", code=errors.COMMON_PARAM_INVALID), "APP_CREDENTIALS_REFUSED"),
    (errors.AuthError("Invalid app secret", code=errors.COMMON_PARAM_INVALID), "APP_CREDENTIALS_REFUSED"),
    (errors.AuthError("Invalid app_key: no app has this key.", code=errors.COMMON_PARAM_INVALID), "APP_KEY_REFUSED"),
    (errors.AuthError("Invalid credentials. The x-tts-access-token is invalid.", code=errors.COMMON_PARAM_INVALID),
     "ACCESS_TOKEN_REFUSED"),
    (errors.AuthCodeInvalidError("Invalid auth code", code=errors.AUTH_CODE_INVALID), "AUTH_CODE_REFUSED"),
    (errors.RefreshTokenInvalidError("Refresh token refused: it was already used", code=errors.AUTH_CODE_INVALID),
     "REFRESH_TOKEN_REFUSED"),
    (errors.AuthError("Access denied: scope", code=errors.SCOPE_MISSING), "SCOPE_REFUSED"),
    (errors.AuthError("IP not in the allow-list", code=errors.IP_NOT_ALLOWED), "ADDRESS_REFUSED"),
    (errors.TransportError("ConnectError talking to api.example/authorization/202309/shops"), "UNREACHABLE"),
], ids=lambda v: v if isinstance(v, str) else type(v).__name__)
def test_connect_failures_name_the_field_to_fix(exc, sentence):
    from returns_core import explain as ex

    failure = ex.explain_connect(exc)
    assert failure.message.startswith(getattr(ex, sentence).split(" ({")[0]), failure.message
    assert "\n" not in failure.message and str(exc) in failure.message


def test_a_refused_request_time_while_connecting_is_still_the_clock():
    from returns_core import explain as ex

    refused = errors.AuthError("Invalid timestamp: it is more than 30 seconds ahead.", code=errors.COMMON_PARAM_INVALID)
    assert ex.explain_connect(refused).kind is FailureKind.CLOCK
