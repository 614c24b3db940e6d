"""TikTok Shop accounts as users see them: the Account, its status, and list/get/enable/disable.

One account is one shop (keyed by TikTok's shop id). `Account` holds no secret, so it is safe to
show, log and cache. Where the rest of an account's life happens:
- `returns_core.connect`: connecting a shop (tokens or auth code) and testing the connection;
- `returns_core.tiktok_session`: a TikTok client for an account, for one unit of work;
- `returns_core.explain`: every failure in words, with its kind;
- `returns_core.demo`: the embedded demo shop;
- `returns_core.store.accounts`: the SQL, and the secrets encrypted at rest.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from returns_core.store import accounts as store
from returns_core.store.db import Database, utcnow
from returns_core.tiktok.events import is_loopback_address

ACTIVE, EXPIRED, DISABLED, INVALID = "Active", "Expired", "Disabled", "Invalid"
SANDBOX_MODE, LIVE_MODE = "sandbox", "live"  # whether an account's TikTok is the simulator or the real one


class AccountError(ValueError):
    """An account operation refused, with a one-line message for the user."""


class AccountNotFoundError(AccountError, LookupError):
    """No account has that name or shop id."""


class AccountInputError(AccountError):
    """What was typed to connect an account cannot be used (a name, a credential, an address)."""


# --- account names: one rule for the CLI and the Accounts page -------------------------------------

MAX_NAME_LENGTH = 100
# Unicode's bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): invisible
# characters that reorder the text after them, so "Shop\u202eA" shows as another name than it is.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _hidden_characters(text: str) -> list[str]:
    """The invisible characters in `text` that may not be in a name: text-direction and control
    characters (line breaks and tabs are spaces: a name's spaces are collapsed)."""
    return sorted({c for c in text if c in BIDI_CONTROLS or (unicodedata.category(c) == "Cc" and not c.isspace())})


def without_hidden_characters(text: str) -> str:
    """`text` without the characters a name may not hold (for names built from TikTok's shop names)."""
    hidden = set(_hidden_characters(text))
    return "".join(c for c in text if c not in hidden)


def clean_name(name: str | None) -> str:
    """An account name as it is kept: spaces collapsed; refused when empty, too long, or holding
    invisible text-direction or control characters (AccountInputError, one line)."""
    hidden = _hidden_characters(name or "")
    if hidden:
        codes = ", ".join(f"U+{ord(c):04X}" for c in hidden)
        raise AccountInputError(f"The account name contains invisible characters that change how it reads ({codes}); "
                                "type the name again without them.")
    clean = " ".join((name or "").split())
    if not clean:
        raise AccountInputError("Give the account a name.")
    if len(clean) > MAX_NAME_LENGTH:
        raise AccountInputError(f"The account name is too long ({len(clean)} characters; at most {MAX_NAME_LENGTH}).")
    return clean


@dataclass(frozen=True)
class Account:
    """A connected shop as users see it. Holds no secret."""

    shop_id: str
    name: str
    shop_name: str | None
    region: str | None
    shop_cipher: str | None
    app_key: str
    api_base: str
    auth_base: str
    is_sandbox: bool
    enabled: bool
    auth_state: str
    auth_error: str | None
    access_token_expires_at: datetime | None
    refresh_token_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    has_refresh_token: bool = True

    @property
    def status(self) -> str:
        """Active, Expired, Disabled or Invalid (see the Accounts page)."""
        return self.status_at(utcnow())

    def status_at(self, now: datetime) -> str:
        """The status as of `now` (naive UTC)."""
        if not self.enabled:
            return DISABLED
        if self.auth_state == "invalid":
            return INVALID
        refresh_expired = self.refresh_token_expires_at is not None and self.refresh_token_expires_at <= now
        access_expired = self.access_token_expires_at is not None and self.access_token_expires_at <= now
        if refresh_expired or (access_expired and not self.has_refresh_token):
            return EXPIRED
        return ACTIVE

    @property
    def usable(self) -> bool:
        """True when a sync can run for this account."""
        return self.status == ACTIVE

    @property
    def mode(self) -> str:
        """SANDBOX_MODE when the shop's TikTok is the simulator (the demo's, an account marked sandbox, or
        one on this machine, `sandbox serve`), else LIVE_MODE: real buyers, real money."""
        local = self.is_sandbox or self.api_base.startswith("sandbox://") or is_loopback_address(self.api_base)
        return SANDBOX_MODE if local else LIVE_MODE

    @property
    def label(self) -> str:
        """Name and shop, for selectors."""
        return f"{self.name} ({self.shop_id})"


def _account(record: dict[str, Any] | None) -> Account | None:
    return Account(**record) if record is not None else None


def list_accounts(db: Database) -> list[Account]:
    """Every account, by name."""
    return [Account(**record) for record in store.all_accounts(db)]


def get_account(db: Database, name_or_shop_id: str) -> Account:
    """The account with this name (exact, then case-insensitive) or shop id."""
    key = (name_or_shop_id or "").strip()
    found = store.matching(db, key)
    if len(found) != 1:
        raise AccountNotFoundError(f"No account named {key!r}; see `accounts list`.")
    return Account(**found[0])


def find_by_shop_id(db: Database, shop_id: str) -> Account | None:
    """The account of this shop, or None."""
    return _account(store.by_shop_id(db, shop_id))


def find_by_name(db: Database, name: str) -> Account | None:
    """The account with this name in any case, or None."""
    return _account(store.by_name(db, name))


def set_enabled(db: Database, name: str, enabled: bool) -> Account:
    """Enable or disable an account (a disabled account is never synced)."""
    account = get_account(db, name)
    store.set_enabled(db, account.shop_id, enabled)
    return get_account(db, account.shop_id)


def mark_invalid(db: Database, shop_id: str, reason: str) -> None:
    """Flag the account's authorization as refused (status Invalid) with a readable reason."""
    store.mark_invalid(db, shop_id, reason)


def mark_valid(db: Database, shop_id: str) -> None:
    """Clear an Invalid flag. When: `tiktok_session` decides (TikTok answered a call for the shop)."""
    store.mark_valid(db, shop_id)
