"""Connecting a TikTok shop: by tokens or an authorization code, reconnecting, testing the connection.

Connecting asks TikTok which shops the tokens cover and adds (or reconnects) one account per
shop; nothing is written before TikTok has answered and every name has been checked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import httpx

from returns_core.accounts import (
    MAX_NAME_LENGTH,
    Account,
    AccountError,
    AccountInputError,
    clean_name,
    find_by_name,
    find_by_shop_id,
    get_account,
    mark_invalid,
    without_hidden_characters,
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

# TikTok's keys, secrets, tokens, codes and ciphers are short ASCII strings; far longer input is a paste gone wrong
MAX_CREDENTIAL_LENGTH = 2048
# DNS: a host name has at most 253 characters, each dot-separated label at most 63
MAX_HOST_LENGTH, MAX_LABEL_LENGTH = 253, 63
_WEB_SCHEMES = ("https", "http", "sandbox")  # sandbox://: the embedded demo shop (returns_core.demo)


def authorize_url(service_id: str, state: str, *, us: bool = False) -> str:
    """The TikTok page where a seller authorizes the app; TikTok redirects back with ?code&state."""
    return _tiktok_authorize_url(service_id, state, us=us)


# --- checking what was typed ----------------------------------------------------------------------


def _required(label: str, value: str | None) -> str:
    text = (value or "").strip()
    if not text:
        raise AccountInputError(f"The {label} is required.")
    return text


def _credential(label: str, value: str | None) -> str:
    """A key, secret, token or code as typed, checked before anything is sent (never echoed: it may be secret).

    TikTok's are plain ASCII without spaces; anything else (an accented letter, a line break pasted
    along) could never be accepted, and would fail deep in HTTP instead of here.
    """
    text = _required(label, value)
    if len(text) > MAX_CREDENTIAL_LENGTH:
        raise AccountInputError(f"The {label} is {len(text):,} characters long, far longer than TikTok's: "
                                "paste it again exactly as TikTok gave it.")
    if not (text.isascii() and text.isprintable()) or any(c.isspace() for c in text):
        raise AccountInputError(f"The {label} holds characters TikTok never uses (spaces, line breaks or letters "
                                "outside plain ASCII): paste it again exactly as TikTok gave it.")
    return text


def _web_address(label: str, value: str | None) -> str:
    """An API or auth base as typed: an http(s) address with a valid host name."""
    text = _required(label, value).rstrip("/")
    shown = text if len(text) <= 60 else f"{text[:57]}..."
    parts = urlsplit(text)
    if parts.scheme.lower() not in _WEB_SCHEMES or not parts.hostname:
        raise AccountInputError(f"The {label} {shown!r} is not a web address: give one such as {DEFAULT_API_BASE}.")
    host = parts.hostname
    if len(host) > MAX_HOST_LENGTH or any(len(part) > MAX_LABEL_LENGTH for part in host.split(".")):
        raise AccountInputError(f"The {label}'s host name is {len(host):,} characters long, longer than any host "
                                f"can be (at most {MAX_HOST_LENGTH}, {MAX_LABEL_LENGTH} between dots): check it.")
    try:
        host.encode("idna")
        _ = parts.port
    except (UnicodeError, ValueError):
        raise AccountInputError(f"The {label} {shown!r} is not a valid web address: check the host name "
                                "and port.") from None
    return text


def _new_name(db: Database, name: str) -> None:
    """Refuse a name that is taken, before TikTok is asked (and an authorization code spent)."""
    taken = find_by_name(db, name)
    if taken is not None:
        raise AccountError(f"An account named {taken.name!r} exists already: to give it new credentials use "
                           "Reconnect under \"Manage an account\"; to connect another shop, choose another name.")


def _select_shops(shops: list[dict], shop_cipher: str | None) -> list[dict]:
    usable = [s for s in shops if isinstance(s, dict) and s.get("id")]
    if shop_cipher:
        usable = [s for s in usable if s.get("cipher") == shop_cipher]
        if not usable:
            raise AccountError("The token does not authorize a shop with that shop cipher.")
    if not usable:
        raise AccountError("The token authorizes no shop: authorize a shop for this app in TikTok Shop first.")
    return usable


def _plan_names(db: Database, name: str, shops: list[dict], *, renew_for_app: str | None = None
                ) -> list[tuple[store.ConnectedShop, bool]]:
    """(shop under its account name, is_reconnect) per shop; raises before anything is written.

    `renew_for_app`: an authorization code was just spent for this app key. A shop already connected
    under another name with the same app key is then renewed under its own name (a code works once:
    refusing would waste the seller's authorization); any other conflict is refused.
    """
    plans = []
    for shop in shops:
        shop_id = str(shop["id"])
        # TikTok's shop name goes into an account name: without the characters a name may not hold
        shop_name = without_hidden_characters(str(shop.get("name") or shop["id"])) or shop_id
        account_name = (name if len(shops) == 1 else f"{name} - {shop_name}")[:MAX_NAME_LENGTH]
        by_shop = find_by_shop_id(db, shop_id)
        if by_shop is not None and by_shop.name != account_name:
            if renew_for_app is not None and by_shop.app_key == renew_for_app:
                account_name = by_shop.name
            else:
                spent = " (the authorization code was used: a code works only once)" if renew_for_app else ""
                raise AccountError(
                    f"Shop {shop_name} ({shop_id}) is already connected as {by_shop.name!r}{spent}: to renew its "
                    f"authorization, reconnect {by_shop.name!r} (Accounts page, or `accounts add` with that name).")
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
             transport: httpx.BaseTransport | None, new_account: bool = False,
             code_spent: bool = False) -> list[Account]:
    """Ask TikTok which shops the token covers, then add or reconnect one account per shop."""
    name = clean_name(name)
    app_key = _credential("app key", app_key)
    app_secret = _credential("app secret", app_secret)
    tokens = replace(tokens, access_token=_credential("access token", tokens.access_token),
                     refresh_token=_credential("refresh token", tokens.refresh_token) if tokens.refresh_token else None)
    shop_cipher = _credential("shop cipher", shop_cipher) if (shop_cipher or "").strip() else None
    api_base, auth_base = _web_address("API base", api_base), _web_address("auth base", auth_base)
    if new_account and not code_spent:
        _new_name(db, name)
    shops, tokens = _authorized_shops(db, app_key, app_secret, tokens, api_base=api_base, auth_base=auth_base,
                                      transport=transport)
    plans = _plan_names(db, name, _select_shops(shops, shop_cipher), renew_for_app=app_key if code_spent else None)
    store.upsert_connected(db, [shop for shop, _ in plans], app_key=app_key, app_secret=app_secret, tokens=tokens,
                           api_base=api_base, auth_base=auth_base, is_sandbox=is_sandbox)
    for shop, reconnect in plans:
        logger.info("%s account %s", "reconnected" if reconnect else "added", shop.name)
    return [get_account(db, shop.shop_id) for shop, _ in plans]


def add_accounts_with_tokens(db: Database, name: str, app_key: str, app_secret: str, access_token: str,
                             refresh_token: str | None, *, shop_cipher: str | None = None,
                             api_base: str = DEFAULT_API_BASE, auth_base: str = DEFAULT_AUTH_BASE,
                             is_sandbox: bool = False, transport: httpx.BaseTransport | None = None,
                             tokens: TokenSet | None = None, new_account: bool = False,
                             _code_spent: bool = False) -> list[Account]:
    """Connect every shop the tokens authorize (or only `shop_cipher`'s); same name again = reconnect.

    `tokens`, when given, supplies the expiry times of `access_token` and `refresh_token`.
    `new_account`: a name that is taken is refused (the Accounts page's "Connect a shop"; the CLI
    reconnects by name).
    """
    kept = store.Tokens(access_token, refresh_token,
                        expiry(tokens.access_token_expires_at) if tokens else None,
                        expiry(tokens.refresh_token_expires_at) if tokens else None)
    return _connect(db, name, app_key, app_secret, kept, shop_cipher=shop_cipher, api_base=api_base,
                    auth_base=auth_base, is_sandbox=is_sandbox, transport=transport, new_account=new_account,
                    code_spent=_code_spent)


def add_accounts_with_auth_code(db: Database, name: str, app_key: str, app_secret: str, auth_code: str, *,
                                shop_cipher: str | None = None, api_base: str = DEFAULT_API_BASE,
                                auth_base: str = DEFAULT_AUTH_BASE, is_sandbox: bool = False,
                                transport: httpx.BaseTransport | None = None,
                                new_account: bool = False) -> list[Account]:
    """Exchange a seller's authorization code for tokens, then connect as add_accounts_with_tokens.

    A code works once, so everything that can be checked is checked before it is exchanged: what
    was typed and, with `new_account`, that the name is free. Which shop a code is for, TikTok says
    only in exchange for the code; a shop found already connected (same app) is then renewed under
    its own name rather than refused (see `_plan_names`).
    """
    name = clean_name(name)
    code = _credential("authorization code", auth_code)
    app_key, app_secret = _credential("app key", app_key), _credential("app secret", app_secret)
    if (shop_cipher or "").strip():
        _credential("shop cipher", shop_cipher)
    api_base, auth_base = _web_address("API base", api_base), _web_address("auth base", auth_base)
    if new_account:
        _new_name(db, name)
    _, real_auth, real_transport = endpoints(db, api_base, auth_base, transport)
    with AuthClient(app_key, app_secret, auth_base=real_auth, transport=real_transport) as auth:
        tokens = auth.get_token(code)
    return add_accounts_with_tokens(db, name, app_key, app_secret, tokens.access_token, tokens.refresh_token,
                                    shop_cipher=shop_cipher, api_base=api_base, auth_base=auth_base,
                                    is_sandbox=is_sandbox, transport=transport, tokens=tokens,
                                    new_account=new_account, _code_spent=True)


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
    # the session has marked the account valid again: TikTok listed the shop for its token
    return ConnectionCheck(True, None, f"TikTok accepts the token for {account.shop_name or account.shop_id} "
                                       f"({len(ids)} shop(s) authorized).")


test_connection.__test__ = False  # a product function, not a pytest test
