"""A TikTok session for one account: the one way the app talks to TikTok for a connected shop.

`tiktok_session` decrypts the account's secrets, builds the client, and keeps the account's status
true to what TikTok says, in this one place: Invalid when TikTok refuses its authorization, valid
again as soon as TikTok answers a call for the shop. Syncs, re-syncs, TikTok's records, decisions,
webhook checks and the connection test all go through it.

Tokens belong to a grant: one seller authorization, which may cover several shops (each its own
account holding a copy of the grant's tokens, see store/accounts). TikTok retires a refresh token
once it is used, so a grant is refreshed once, under its lock: an flock on the grant's file beside
the store, which threads and processes (CLI syncs, the app) all respect. Whoever gets the lock first
refreshes; the others find the grant already renewed and take its new tokens.

New tokens are never dropped. Room for them is reserved in the grant's file before the refresh
token is spent; they are written there first (encrypted, owner-only), then to every account of the
grant in the store. When the store cannot take them (a long backup holds it, the disk is full),
they wait in the file, and the next session saves and uses them.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from returns_core.accounts import Account, AccountError, AccountNotFoundError
from returns_core.demo import endpoints
from returns_core.explain import REAUTH_REASON, authorization_refused
from returns_core.locks import flock_within
from returns_core.secretbox import SecretKeyError
from returns_core.store import accounts as store
from returns_core.store.db import Database, StoreBusyError, StoreError, utcnow
from returns_core.tiktok import errors
from returns_core.tiktok.client import TikTokClient, TokenSet

logger = logging.getLogger(__name__)

# How long a session waits while another one (any thread or process) refreshes the same grant: a
# refresh is one call to TikTok (with its retries) and two short writes to the store.
RENEW_WAIT_S = 120.0
_LOCK_POLL_S = 0.02
# Bytes reserved in a grant's file for renewed tokens (an encrypted pair takes well under 1 KB):
# allocated before the refresh token is spent, so a full disk cannot lose what TikTok sends back.
KEEP_ROOM = 4096


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


def _token_set(tokens: store.Tokens) -> TokenSet:
    def unix(when: datetime | None) -> int:
        return int(when.replace(tzinfo=UTC).timestamp()) if when else 0

    return TokenSet(tokens.access_token, tokens.refresh_token or "", unix(tokens.access_expires_at),
                    unix(tokens.refresh_expires_at))


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__


def grant_file(db: Database, grant_id: str) -> Path:
    """The grant's file beside the store: its refresh lock, and where renewed tokens wait for the store."""
    return db.path.with_name(f"{db.path.name}.grant-{grant_id}.tokens")


class Grant:
    """One seller authorization's refresh: once at a time across threads and processes, nothing lost."""

    def __init__(self, db: Database, grant_id: str, account_name: str):
        self.db, self.grant_id, self.account_name = db, grant_id, account_name
        self.path = grant_file(db, grant_id)

    # --- the tokens waiting in the file -------------------------------------------------------

    def kept(self) -> store.Tokens | None:
        """Tokens TikTok renewed that the store did not take yet, or None (read without the lock:
        a half-written file fails its authentication and reads as nothing)."""
        try:
            return self._decode(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except OSError as exc:
            logger.warning("cannot read %s: %s", self.path.name, exc)
            return None

    def _decode(self, raw: bytes) -> store.Tokens | None:
        text = raw.split(b"\0", 1)[0].strip()
        if not text:
            return None
        try:
            doc = json.loads(self.db.box.decrypt(text.decode()))
            return store.Tokens(doc["access_token"], doc["refresh_token"], _when(doc["access_expires_at"]),
                                _when(doc["refresh_expires_at"]))
        except (SecretKeyError, ValueError, KeyError, TypeError) as exc:
            # left as it is: with the right key back, the tokens can still be read
            logger.warning("the tokens kept in %s cannot be read (%s)", self.path.name, exc.__class__.__name__)
            return None

    def _read(self, fd: int) -> store.Tokens | None:
        return self._decode(os.pread(fd, max(os.fstat(fd).st_size, KEEP_ROOM), 0))

    def _keep(self, fd: int, tokens: store.Tokens) -> OSError | None:
        """Write the tokens in the reserved room (encrypted) and flush them to disk; the error, if any."""
        doc = {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token,
               "access_expires_at": _iso(tokens.access_expires_at),
               "refresh_expires_at": _iso(tokens.refresh_expires_at)}
        data = (self.db.box.encrypt(json.dumps(doc)) or "").encode() + b"\n"
        try:
            # the whole file is overwritten, so nothing of an earlier, longer content is left after it
            os.pwrite(fd, data.ljust(max(KEEP_ROOM, os.fstat(fd).st_size), b"\0"), 0)
            os.fsync(fd)
        except OSError as exc:
            return exc
        return None

    def _clear(self, fd: int) -> None:
        """Nothing waits any more: blank the file in place (its room stays reserved)."""
        try:
            os.pwrite(fd, b"\0" * max(KEEP_ROOM, os.fstat(fd).st_size), 0)
            os.fsync(fd)
        except OSError as exc:  # the store has the tokens; the file only repeats them, which is harmless
            logger.warning("cannot clear %s: %s", self.path.name, exc)

    def _reserve(self, fd: int) -> None:
        try:
            if os.fstat(fd).st_size < KEEP_ROOM:
                os.posix_fallocate(fd, 0, KEEP_ROOM)
                os.fsync(fd)
        except OSError as exc:
            raise StoreError(
                f"Cannot renew TikTok's access for {self.account_name}: there is no room beside the store to keep "
                f"the new tokens ({exc.strerror or exc}). The current tokens are untouched: free some disk space "
                f"and try again.") from None

    # --- the lock -----------------------------------------------------------------------------

    @contextmanager
    def _locked(self, wait: float = RENEW_WAIT_S) -> Iterator[int]:
        """Hold the grant's lock (an flock on its file: per open file, so threads exclude each other too)."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise StoreError(f"Cannot renew TikTok's access for {self.account_name}: cannot open {self.path.name} "
                             f"beside the store ({exc.strerror or exc}). The current tokens are untouched.") from None
        try:
            if not flock_within(fd, wait, _LOCK_POLL_S):
                raise StoreBusyError(
                    f"Another sync or action has been renewing TikTok's access for {self.account_name} "
                    f"for over {wait:.0f} s. Try again in a moment.")
            try:
                yield fd
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # --- what sessions do ---------------------------------------------------------------------

    def settle(self) -> store.Tokens | None:
        """At the start of a session: tokens an earlier session kept because the store could not take
        them, saved now if it can, and to be used either way (they are the live ones); else None."""
        waiting = self.kept()
        if waiting is None:
            return None
        try:
            with self._locked(wait=0) as fd:
                waiting = self._read(fd)
                if waiting is not None:
                    self._save_waiting(fd, waiting)
        except StoreError:
            pass  # another session is renewing the grant right now: it saves what it gets
        return waiting

    def renew(self, held_refresh: str | None, refresh: Callable[[str], TokenSet]) -> TokenSet:
        """New tokens for a session whose access token TikTok called expired.

        Under the grant's lock: the tokens another session renewed meanwhile, if any; else TikTok's,
        from the latest refresh token, kept in the reserved room and then saved to every account of
        the grant. Raises StoreError (StoreBusyError when the store was busy) saying where the new
        tokens are when the store could not take them.
        """
        with self._locked() as fd:
            latest = self._latest(fd)
            if (latest is not None and latest.refresh_token and latest.refresh_token != held_refresh
                    and not _expired(latest.access_expires_at)):
                return _token_set(latest)  # another session renewed the grant: its tokens are the live ones
            spend = latest.refresh_token if latest is not None and latest.refresh_token else held_refresh
            if not spend:
                raise errors.RefreshTokenInvalidError("No refresh token: reconnect the shop")
            self._reserve(fd)
            fresh = refresh(spend)  # from here on, the old refresh token is spent
            tokens = tokens_to_keep(fresh)
            keep_error = self._keep(fd, tokens)
            try:
                store.save_tokens(self.db, self.grant_id, tokens)
            except Exception as exc:  # noqa: BLE001 - busy, full disk, I/O: said in words below
                raise self._not_saved(exc, keep_error) from exc
            self._clear(fd)
            return fresh

    def _latest(self, fd: int) -> store.Tokens | None:
        """The grant's newest tokens: waiting in the file (saved to the store now if it takes them), else
        the store's; None when no account holds the grant any more."""
        waiting = self._read(fd)
        if waiting is not None:
            self._save_waiting(fd, waiting)
            return waiting
        return store.grant_tokens(self.db, self.grant_id)

    def _save_waiting(self, fd: int, tokens: store.Tokens) -> None:
        try:
            store.save_tokens(self.db, self.grant_id, tokens)
        except Exception as exc:  # noqa: BLE001 - they stay in the file and are used from there
            logger.warning("the renewed tokens of %s still wait in %s: the store did not take them (%s)",
                           self.account_name, self.path.name, _first_line(exc))
            return
        self._clear(fd)
        logger.info("saved the renewed tokens of %s that waited in %s", self.account_name, self.path.name)

    def _not_saved(self, exc: BaseException, keep_error: OSError | None) -> StoreError:
        reason = _first_line(exc)
        if keep_error is None:
            where = (f"they are kept encrypted in {self.path.name} beside it and will be saved and used "
                     f"on the next run")
        else:
            where = (f"nor kept beside it ({keep_error.strerror or keep_error}): reconnect the shop if it "
                     f"turns Invalid")
        message = (f"TikTok renewed the access of {self.account_name}, but the new tokens could not be saved in "
                   f"the store ({reason}); {where}.")
        return (StoreBusyError if isinstance(exc, StoreBusyError) else StoreError)(message)


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _expired(when: datetime | None) -> bool:
    return when is not None and when <= utcnow()


class _SessionClient(TikTokClient):
    """The account's client: refreshes through its grant, and notes when TikTok answered for the shop."""

    def __init__(self, grant: Grant, shop_id: str, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._grant = grant
        self._shop_id = shop_id
        self.accepted = False  # TikTok answered a call for this shop: its authorization holds

    def refresh_tokens(self) -> TokenSet:
        """Renew through the grant (once across processes); use the tokens from now on."""
        tokens = self._grant.renew(self._refresh_token, self._auth.refresh)
        self._access_token, self._refresh_token = tokens.access_token, tokens.refresh_token
        logger.debug("access token renewed for shop %s", self._shop_id)
        if self.on_token_refresh is not None:
            self.on_token_refresh(tokens)
        return tokens

    def _call(self, method: str, path: str, *args: Any, **kwargs: Any) -> dict:
        data = super()._call(method, path, *args, **kwargs)
        # /authorization/ calls are about the token, not the shop (see get_authorized_shops)
        if not path.startswith("/authorization/"):
            self.accepted = True
        return data

    def get_authorized_shops(self) -> list[dict]:
        shops = super().get_authorized_shops()
        if any(isinstance(s, dict) and str(s.get("id")) == self._shop_id for s in shops):
            self.accepted = True
        return shops


def _secrets(db: Database, shop_id: str, name: str) -> store.Secrets:
    """The account's secrets, its grant (linked first for an account from before grants) and validity."""
    secrets = store.secrets_for(db, shop_id)
    if secrets is not None and secrets.grant_id is None:
        store.link_grants(db)
        secrets = store.secrets_for(db, shop_id)
    if secrets is None:
        raise AccountNotFoundError(f"The account {name!r} no longer exists.")
    return secrets


def save_tokens(db: Database, shop_id: str, tokens: TokenSet) -> None:
    """Store tokens for the account's grant: every account sharing the authorization gets them."""
    store.save_tokens(db, _secrets(db, shop_id, shop_id).grant_id or "", tokens_to_keep(tokens))


def _client(db: Database, account: Account, transport: httpx.BaseTransport | None,
            options: dict[str, Any]) -> tuple[_SessionClient, bool]:
    """The account's client, and whether the account is marked Invalid now."""
    secrets = _secrets(db, account.shop_id, account.name)
    grant = Grant(db, secrets.grant_id or "", account.name)
    waiting = grant.settle()
    access, refresh = ((waiting.access_token, waiting.refresh_token) if waiting is not None
                       else (secrets.access_token, secrets.refresh_token))
    if not access:
        raise AccountError(f"The account {account.name!r} has no access token: reconnect it.")
    api_base, auth_base, transport = endpoints(db, account.api_base, account.auth_base, transport)
    client = _SessionClient(grant, account.shop_id, account.app_key, secrets.app_secret or "", access, refresh,
                            account.shop_cipher, api_base=api_base, auth_base=auth_base, transport=transport,
                            **options)
    return client, secrets.invalid


@contextmanager
def tiktok_session(db: Database, account: Account, *, transport: httpx.BaseTransport | None = None,
                   **options: Any) -> Iterator[TikTokClient]:
    """A TikTokClient for this account for one unit of work, closed on exit.

    The account's status follows what TikTok said inside the block: refused authorization anywhere
    marks it Invalid (and the error is re-raised); otherwise, once TikTok has answered a call for the
    shop, an Invalid mark is cleared. Renewed tokens reach every account of the grant.
    Raises AccountError (gone, or no token) or SecretKeyError before any call is made.
    """
    client, was_invalid = _client(db, account, transport, options)
    with client:
        refused = False
        try:
            yield client
        except errors.TikTokError as exc:
            refused = authorization_refused(exc)
            if refused:
                _mark_refused(db, account)
            raise
        finally:
            if client.accepted and was_invalid and not refused:
                _mark_accepted(db, account)


def _mark_refused(db: Database, account: Account) -> None:
    # best effort: the caller must see TikTok's refusal even when the store cannot record it now
    try:
        store.mark_invalid(db, account.shop_id, REAUTH_REASON)
    except Exception as exc:  # noqa: BLE001 - logged; the refusal itself is re-raised
        logger.warning("could not mark %s invalid: %s", account.name, exc)


def _mark_accepted(db: Database, account: Account) -> None:
    # best effort: the next session TikTok answers clears it as well
    try:
        store.mark_valid(db, account.shop_id)
    except Exception as exc:  # noqa: BLE001 - logged; the block's own outcome stands
        logger.warning("could not mark %s valid again: %s", account.name, exc)
        return
    logger.info("%s is valid again: TikTok answered a call for it", account.name)
