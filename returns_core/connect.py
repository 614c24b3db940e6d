"""Connecting a TikTok shop: by tokens or an authorization code, reconnecting, testing the connection.

Connecting asks TikTok which shops the tokens cover and adds (or reconnects) one account per
shop; nothing is written before TikTok has answered and every name has been checked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import httpx

from returns_core.accounts import (
    Account,
    AccountError,
    find_by_name,
    find_by_shop_id,
    get_account,
    mark_invalid,
    mark_valid,
)
from returns_core.config import DEFAULT_API_BASE, DEFAULT_AUTH_BASE
from returns_core.demo import endpoints
from returns_core.explain import FailureKind, explain
from returns_core.store import accounts as store
from returns_core.store.db import Database
from returns_core.tiktok import errors
from returns_core.tiktok.client import AuthClient, TikTokClient, TokenSet
from returns_core.tiktok.client import authorize_url as _tiktok_authorize_url
from returns_core.tiktok_session import expiry, tiktok_session, tokens_to_keep

logger = logging.getLogger(__name__)

MAX_NAME_LENGTH = 100


def authorize_url(service_id: str, state: str, *, us: bool = False) -> str:
    """The TikTok page where a seller authorizes the app; TikTok redirects back with ?code&state."""
    return _tiktok_authorize_url(service_id, state, us=us)


# --- checking what was typed ----------------------------------------------------------------------


def _clean_name(name: str) -> str:
    clean = " ".join((name or "").split())
    if not clean:
        raise AccountError("Give the account a name.")
    if len(clean) > MAX_NAME_LENGTH:
        raise AccountError(f"The account name is too long ({len(clean)} characters; at most {MAX_NAME_LENGTH}).")
    return clean


def _required(label: str, value: str | None) -> str:
    text = (value or "").strip()
    if not text:
        raise AccountError(f"The {label} is required.")
    return text


def _select_shops(shops: list[dict], shop_cipher: str | None) -> list[dict]:
    usable = [s for s in shops if isinstance(s, dict) and s.get("id")]
    if shop_cipher:
        usable = [s for s in usable if s.get("cipher") == shop_cipher]
        if not usable:
            raise AccountError("The token does not authorize a shop with that shop cipher.")
    if not usable:
        raise AccountError("The token authorizes no shop: authorize a shop for this app in TikTok Shop first.")
    return usable


def _plan_names(db: Database, name: str, shops: list[dict]) -> list[tuple[store.ConnectedShop, bool]]:
    """(shop under its account name, is_reconnect) per shop; raises before anything is written."""
    plans = []
    for shop in shops:
        shop_id, shop_name = str(shop["id"]), str(shop.get("name") or shop["id"])
        account_name = (name if len(shops) == 1 else f"{name} - {shop_name}")[:MAX_NAME_LENGTH]
        by_shop = find_by_shop_id(db, shop_id)
        if by_shop is not None and by_shop.name != account_name:
            raise AccountError(
                f"Shop {shop_name} ({shop_id}) is already connected as {by_shop.name!r}; "
                f"reconnect it under that name.")
        by_name = find_by_name(db, account_name)
        if by_name is not None and by_name.shop_id != shop_id:
            raise AccountError(f"The name {account_name!r} is already used by shop {by_name.shop_id}; choose another.")
        connected = store.ConnectedShop(shop_id, account_name, shop.get("name"), shop.get("region"),
                                        shop.get("cipher"))
        plans.append((connected, by_shop is not None))
    return plans


# --- connecting -----------------------------------------------------------------------------------


def _authorized_shops(db: Database, app_key: str, app_secret: str, tokens: store.Tokens, *, api_base: str,
                      auth_base: str, transport: httpx.BaseTransport | None) -> tuple[list[dict], store.Tokens]:
    """The shops these tokens cover, and the tokens to keep (TikTok may refresh them on the way)."""
    real_api, real_auth, real_transport = endpoints(db, api_base, auth_base, transport)
    refreshed: list[TokenSet] = []
    with TikTokClient(app_key, app_secret, tokens.access_token, tokens.refresh_token, api_base=real_api,
                      auth_base=real_auth, transport=real_transport, on_token_refresh=refreshed.append) as client:
        shops = client.get_authorized_shops()
    return shops, tokens_to_keep(refreshed[-1]) if refreshed else tokens


def _connect(db: Database, name: str, app_key: str, app_secret: str, tokens: store.Tokens, *,
             shop_cipher: str | None, api_base: str, auth_base: str, is_sandbox: bool,
             transport: httpx.BaseTransport | None) -> list[Account]:
    """Ask TikTok which shops the token covers, then add or reconnect one account per shop."""
    name = _clean_name(name)
    app_key = _required("app key", app_key)
    app_secret = _required("app secret", app_secret)
    tokens = replace(tokens, access_token=_required("access token", tokens.access_token))
    shops, tokens = _authorized_shops(db, app_key, app_secret, tokens, api_base=api_base, auth_base=auth_base,
                                      transport=transport)
    plans = _plan_names(db, name, _select_shops(shops, shop_cipher))
    store.upsert_connected(db, [shop for shop, _ in plans], app_key=app_key, app_secret=app_secret, tokens=tokens,
                           api_base=api_base, auth_base=auth_base, is_sandbox=is_sandbox)
    for shop, reconnect in plans:
        logger.info("%s account %s", "reconnected" if reconnect else "added", shop.name)
    return [get_account(db, shop.shop_id) for shop, _ in plans]


def add_accounts_with_tokens(db: Database, name: str, app_key: str, app_secret: str, access_token: str,
                             refresh_token: str | None, *, shop_cipher: str | None = None,
                             api_base: str = DEFAULT_API_BASE, auth_base: str = DEFAULT_AUTH_BASE,
                             is_sandbox: bool = False, transport: httpx.BaseTransport | None = None,
                             tokens: TokenSet | None = None) -> list[Account]:
    """Connect every shop the tokens authorize (or only `shop_cipher`'s); same name again = reconnect.

    `tokens`, when given, supplies the expiry times of `access_token` and `refresh_token`.
    """
    kept = store.Tokens(access_token, refresh_token,
                        expiry(tokens.access_token_expires_at) if tokens else None,
                        expiry(tokens.refresh_token_expires_at) if tokens else None)
    return _connect(db, name, app_key, app_secret, kept, shop_cipher=shop_cipher, api_base=api_base,
                    auth_base=auth_base, is_sandbox=is_sandbox, transport=transport)


def add_accounts_with_auth_code(db: Database, name: str, app_key: str, app_secret: str, auth_code: str, *,
                                shop_cipher: str | None = None, api_base: str = DEFAULT_API_BASE,
                                auth_base: str = DEFAULT_AUTH_BASE, is_sandbox: bool = False,
                                transport: httpx.BaseTransport | None = None) -> list[Account]:
    """Exchange a seller's authorization code for tokens, then connect as add_accounts_with_tokens."""
    _clean_name(name)
    code = _required("authorization code", auth_code)
    _, real_auth, real_transport = endpoints(db, api_base, auth_base, transport)
    with AuthClient(_required("app key", app_key), _required("app secret", app_secret), auth_base=real_auth,
                    transport=real_transport) as auth:
        tokens = auth.get_token(code)
    return add_accounts_with_tokens(db, name, app_key, app_secret, tokens.access_token, tokens.refresh_token,
                                    shop_cipher=shop_cipher, api_base=api_base, auth_base=auth_base,
                                    is_sandbox=is_sandbox, transport=transport, tokens=tokens)


# --- testing the connection -----------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionCheck:
    """What testing an account's connection found: ok, else the kind of failure, and in words."""

    ok: bool
    kind: FailureKind | None  # None when ok
    message: str

    @property
    def summary(self) -> str:
        """One line for the user: "OK: ..." or "Failed: ..."."""
        return f"{'OK' if self.ok else 'Failed'}: {self.message}"


def test_connection(db: Database, account: Account, *, transport: httpx.BaseTransport | None = None
                    ) -> ConnectionCheck:
    """Ask TikTok which shops the account's token covers; marks the account Invalid when refused."""
    try:
        with tiktok_session(db, account, transport=transport) as client:
            shops = client.get_authorized_shops()
    except errors.TikTokError as exc:
        failure = explain(exc)
        return ConnectionCheck(False, failure.kind, failure.message)
    ids = {str(s.get("id")) for s in shops if isinstance(s, dict)}
    if account.shop_id not in ids:
        reason = f"The token no longer authorizes shop {account.shop_id}: reconnect the shop on the Accounts page"
        mark_invalid(db, account.shop_id, reason)
        return ConnectionCheck(False, FailureKind.AUTHORIZATION, reason)
    mark_valid(db, account.shop_id)
    return ConnectionCheck(True, None, f"TikTok accepts the token for {account.shop_name or account.shop_id} "
                                       f"({len(ids)} shop(s) authorized).")


test_connection.__test__ = False  # a product function, not a pytest test
