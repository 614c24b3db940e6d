"""A TikTok session for one account: the one way the app talks to TikTok for a connected shop.

`tiktok_session` decrypts the account's secrets, builds the client, saves the tokens TikTok
rotates as they arrive, and marks the account Invalid when TikTok refuses its authorization.
Syncs, re-syncs, TikTok's records, decisions and the connection test all go through it, so an
account never stays Active after TikTok said no.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx

from returns_core.accounts import Account, AccountError, AccountNotFoundError
from returns_core.demo import endpoints
from returns_core.explain import REAUTH_REASON, authorization_refused
from returns_core.store import accounts as store
from returns_core.store.db import Database
from returns_core.tiktok import errors
from returns_core.tiktok.client import TikTokClient, TokenSet

logger = logging.getLogger(__name__)


def expiry(unix_seconds: int | None) -> datetime | None:
    """TikTok's absolute expiry (unix seconds) as a naive UTC time; None when absent or absurd."""
    if not unix_seconds:
        return None
    try:
        return datetime.fromtimestamp(int(unix_seconds), UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        return None


def tokens_to_keep(tokens: TokenSet) -> store.Tokens:
    """TikTok's tokens as the store keeps them."""
    return store.Tokens(tokens.access_token, tokens.refresh_token, expiry(tokens.access_token_expires_at),
                        expiry(tokens.refresh_token_expires_at))


def save_tokens(db: Database, shop_id: str, tokens: TokenSet) -> None:
    """Persist refreshed tokens (encrypted) right away: TikTok rotates the refresh token."""
    store.save_tokens(db, shop_id, tokens_to_keep(tokens))


def _client(db: Database, account: Account, transport: httpx.BaseTransport | None,
            options: dict[str, Any]) -> TikTokClient:
    secrets = store.secrets_for(db, account.shop_id)
    if secrets is None:
        raise AccountNotFoundError(f"The account {account.name!r} no longer exists.")
    if not secrets.access_token:
        raise AccountError(f"The account {account.name!r} has no access token: reconnect it.")
    api_base, auth_base, transport = endpoints(db, account.api_base, account.auth_base, transport)
    shop_id = account.shop_id

    def persist(tokens: TokenSet) -> None:
        save_tokens(db, shop_id, tokens)

    return TikTokClient(account.app_key, secrets.app_secret or "", secrets.access_token, secrets.refresh_token,
                        account.shop_cipher, api_base=api_base, auth_base=auth_base, transport=transport,
                        on_token_refresh=persist, **options)


@contextmanager
def tiktok_session(db: Database, account: Account, *, transport: httpx.BaseTransport | None = None,
                   **options: Any) -> Iterator[TikTokClient]:
    """A TikTokClient for this account for one unit of work, closed on exit.

    Refreshed tokens are saved (encrypted) as they arrive. When TikTok refuses the authorization
    anywhere inside the block, the account is marked Invalid and the error is re-raised.
    Raises AccountError (gone, or no token) or SecretKeyError before any call is made.
    """
    with _client(db, account, transport, options) as client:
        try:
            yield client
        except errors.TikTokError as exc:
            if authorization_refused(exc):
                _mark_refused(db, account)
            raise


def _mark_refused(db: Database, account: Account) -> None:
    # best effort: the caller must see TikTok's refusal even when the store cannot record it now
    try:
        store.mark_invalid(db, account.shop_id, REAUTH_REASON)
    except Exception as exc:  # noqa: BLE001 - logged; the refusal itself is re-raised
        logger.warning("could not mark %s invalid: %s", account.name, exc)
