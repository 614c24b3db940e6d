"""The TikTok client against the sandbox over real HTTP: paging, filters, errors, retries, refresh."""

from __future__ import annotations

import pytest

from returns_core.tiktok import errors
from returns_core.tiktok.client import AuthClient, RetryPolicy, TikTokClient, TokenSet
from returns_core.tiktok.sandbox import SANDBOX_APP_KEY, SANDBOX_APP_SECRET

pytestmark = pytest.mark.sandbox(shops=2, returns=120)


@pytest.fixture
def tokens(sandbox) -> TokenSet:
    return TokenSet.from_data(sandbox.issue_tokens())


@pytest.fixture
def make_client(sandbox, sandbox_server, tokens):
    """make_client(shop_index=0, **options): a client for one sandbox shop over HTTP, no real sleeping."""
    made: list[TikTokClient] = []

    def build(shop_index: int = 0, **options) -> TikTokClient:
        settings = {"api_base": sandbox_server.url, "auth_base": sandbox_server.url, "sleep": lambda s: None,
                    "retry": RetryPolicy(max_attempts=3, base_delay=0.01), **options}
        app_secret = settings.pop("app_secret", SANDBOX_APP_SECRET)
        access = settings.pop("access_token", tokens.access_token)
        client = TikTokClient(SANDBOX_APP_KEY, app_secret, access, tokens.refresh_token,
                              sandbox.shops[shop_index]["cipher"], **settings)
        made.append(client)
        return client

    yield build
    for client in made:
        client.close()


def all_ids(client: TikTokClient, filters: dict | None = None, **kw) -> list[str]:
    return [o["return_id"] for page in client.iter_return_pages(filters, **kw) for o in page.return_orders]


def test_authorized_shops_are_the_sandbox_shops(make_client, sandbox):
    assert make_client().get_authorized_shops() == sandbox.shops


def test_paging_by_update_time_gives_every_return_once_in_order(make_client, sandbox):
    client = make_client()
    truth = sandbox.returns_for(sandbox.shops[0]["id"])
    pages = list(client.iter_return_pages(page_size=50))
    assert [len(p.return_orders) for p in pages[:-1]] == [50] * (len(pages) - 1)
    assert all(p.total_count == len(truth) for p in pages) and pages[-1].next_page_token == ""
    got = [o for p in pages for o in p.return_orders]
    assert sorted(o["return_id"] for o in got) == sorted(o["return_id"] for o in truth)
    keys = [o["update_time"] for o in got]
    assert keys == sorted(keys)


def test_small_pages_descending_by_create_time(make_client, sandbox):
    client = make_client()
    ids = all_ids(client, page_size=10, sort_field="create_time", sort_order="DESC")
    truth = sandbox.returns_for(sandbox.shops[0]["id"])  # create_time order
    assert ids == [o["return_id"] for o in reversed(truth)]


def test_filters_status_type_ids_and_update_window(make_client, sandbox):
    client = make_client()
    truth = sandbox.returns_for(sandbox.shops[0]["id"])
    status = truth[0]["return_status"]
    assert sorted(all_ids(client, {"return_status": [status]})) == sorted(
        o["return_id"] for o in truth if o["return_status"] == status)
    assert sorted(all_ids(client, {"return_types": ["REFUND"]})) == sorted(
        o["return_id"] for o in truth if o["return_type"] == "REFUND")
    picked = [truth[3]["return_id"], truth[7]["return_id"]]
    assert sorted(all_ids(client, {"return_ids": picked})) == sorted(picked)
    cut = sorted(o["update_time"] for o in truth)[len(truth) // 2]
    assert sorted(all_ids(client, {"update_time_ge": cut})) == sorted(
        o["return_id"] for o in truth if o["update_time"] >= cut)


def test_each_shop_sees_only_its_own_returns(make_client, sandbox):
    first, second = (set(all_ids(make_client(i))) for i in (0, 1))
    assert first and second and not first & second


def test_bad_secret_is_an_auth_error_with_no_secret_in_the_message(make_client):
    with pytest.raises(errors.AuthError) as caught:
        make_client(app_secret="wrong-secret").search_returns()
    assert caught.value.code == errors.SIGN_INVALID
    assert "wrong-secret" not in str(caught.value) and "\n" not in str(caught.value)


def test_unknown_token_is_refused(make_client):
    with pytest.raises(errors.AuthError) as caught:
        make_client(access_token="TTP_not_issued").get_authorized_shops()
    assert "TTP_not_issued" not in str(caught.value)


def test_unknown_return_is_a_parameter_error(make_client):
    with pytest.raises(errors.ParameterError):
        make_client().get_return_records("999")


def test_records_and_reject_reasons(make_client, sandbox):
    client = make_client()
    truth = sandbox.returns_for(sandbox.shops[0]["id"])
    records = client.get_return_records(truth[0]["return_id"])
    assert records and all("create_time" in r for r in records)
    pending = [o for o in truth if o["return_status"].endswith("_PENDING")]
    if pending:
        reasons = client.get_reject_reasons(pending[0]["return_id"])
        assert all(set(r) == {"name", "text"} for r in reasons)


@pytest.mark.parametrize("kind", ["429", "500", "503", "malformed", "truncate", "reset"])
def test_transient_faults_are_retried(make_client, sandbox, kind):
    sandbox.faults.inject(kind, count=2, retry_after=0.01)
    page = make_client().search_returns(page_size=10)
    assert len(page.return_orders) == 10 and sandbox.faults.pending == 0


@pytest.mark.parametrize(("kind", "error"), [("429", errors.RateLimitedError), ("500", errors.ServerError),
                                             ("503", errors.ServerError), ("reset", errors.TransportError),
                                             ("malformed", errors.MalformedResponseError)])
def test_persistent_faults_raise_the_typed_error_after_the_retries(make_client, sandbox, kind, error):
    sandbox.faults.inject(kind, count=3, retry_after=0.01)
    with pytest.raises(error):
        make_client().search_returns(page_size=10)


def test_a_timeout_is_retried_then_reported(make_client, sandbox):
    # held back well past the client's timeout, which a normal answer meets even on a busy machine
    sandbox.faults.inject("timeout", count=1, delay=3.0)
    assert make_client(timeout=1.0).search_returns(page_size=10).return_orders
    sandbox.faults.inject("timeout", count=3, delay=3.0)
    with pytest.raises(errors.TransportError):
        make_client(timeout=1.0).search_returns(page_size=10)


def test_an_expired_token_is_refreshed_once_and_handed_over(make_client, sandbox, tokens, sandbox_server):
    saved: list[TokenSet] = []
    client = make_client(on_token_refresh=saved.append)
    sandbox.expire_access_token(tokens.access_token)
    assert client.search_returns(page_size=10).return_orders
    assert len(saved) == 1 and saved[0].refresh_token != tokens.refresh_token
    assert client.search_returns(page_size=10).return_orders  # no second refresh needed
    assert len(saved) == 1
    # the old refresh token was spent by the refresh
    with AuthClient(SANDBOX_APP_KEY, SANDBOX_APP_SECRET, auth_base=sandbox_server.url) as auth, \
            pytest.raises(errors.RefreshTokenInvalidError):
        auth.refresh(tokens.refresh_token)


def test_a_revoked_grant_cannot_refresh(make_client, sandbox, tokens):
    client = make_client()
    sandbox.revoke(tokens.access_token)
    with pytest.raises(errors.AuthError):
        client.search_returns(page_size=10)
    with pytest.raises(errors.RefreshTokenInvalidError):
        client.refresh_tokens()


def test_auth_code_works_once(sandbox, sandbox_server):
    code = sandbox.issue_auth_code()
    with AuthClient(SANDBOX_APP_KEY, SANDBOX_APP_SECRET, auth_base=sandbox_server.url) as auth:
        tokens = auth.get_token(code)
        assert tokens.access_token and tokens.refresh_token_expires_at > tokens.access_token_expires_at
        with pytest.raises(errors.AuthCodeInvalidError):
            auth.get_token(code)
