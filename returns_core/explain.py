"""Every failure as one readable line with its kind: the app-wide explainer.

Callers decide by `Failure.kind` (reconnect, retry, wait...), never by reading the words, so a
message can be reworded without changing what the app does. No message carries a secret: the
TikTok client scrubs them from its errors, and nothing else here sees one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from returns_core.accounts import AccountError
from returns_core.secretbox import SecretKeyError
from returns_core.store.db import StoreBusyError, StoreError
from returns_core.tiktok import errors

REAUTH_REASON = "Authorization was revoked or expired: reconnect the shop on the Accounts page"
CLOCK_REASON = "TikTok refused the request time: this computer's clock is off; correct it (use NTP) and retry"


class FailureKind(Enum):
    """What went wrong, as far as what the user can do about it."""

    AUTHORIZATION = "authorization"  # TikTok refused the shop's authorization: reconnect the shop
    CLOCK = "clock"  # TikTok refused our request time: fix this computer's clock
    RATE_LIMITED = "rate limited"  # too many requests, even after the retries: wait a few minutes
    TIKTOK_DOWN = "tiktok down"  # TikTok's own servers failed, even after the retries
    NETWORK = "network"  # TikTok could not be reached
    TIKTOK_ERROR = "tiktok error"  # TikTok refused the request, or answered something unreadable
    BUSY = "busy"  # another process or sync holds what we need: try again in a moment
    DISABLED = "disabled"  # the account is turned off here (a sync says so without an exception)
    SECRET_KEY = "secret key"  # the stored credentials cannot be decrypted with this key
    ACCOUNT = "account"  # the account is unknown, or cannot be used as it stands
    STORE = "store"  # the database file cannot be opened or used
    UNEXPECTED = "unexpected"  # anything else: a bug or an interrupted call


@dataclass(frozen=True)
class Failure:
    """A failure's kind and its one-line message."""

    kind: FailureKind
    message: str

    def __str__(self) -> str:
        return self.message


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__


def _clock_problem(exc: BaseException) -> bool:
    # 36009004 is reused for a bad timestamp too (docs section 6): a wrong local clock is not a
    # revoked authorization, so it must not mark the account Invalid
    return (isinstance(exc, errors.AuthError) and exc.code == errors.COMMON_PARAM_INVALID
            and "timestamp" in (exc.message or "").lower())


def _explain_tiktok(exc: errors.TikTokError) -> Failure:
    if _clock_problem(exc):
        return Failure(FailureKind.CLOCK, f"{CLOCK_REASON} ({exc})")
    if isinstance(exc, errors.AuthError):
        return Failure(FailureKind.AUTHORIZATION, f"{REAUTH_REASON} ({exc})")
    if isinstance(exc, errors.RateLimitedError):
        return Failure(FailureKind.RATE_LIMITED,
                       f"TikTok kept refusing with 'too many requests'; try again in a few minutes ({exc})")
    if isinstance(exc, errors.ServerError):
        return Failure(FailureKind.TIKTOK_DOWN, f"TikTok had a server error; try again later ({exc})")
    if isinstance(exc, errors.TransportError):
        return Failure(FailureKind.NETWORK, f"Cannot reach TikTok: {exc}")
    if isinstance(exc, errors.MalformedResponseError):
        return Failure(FailureKind.TIKTOK_ERROR, f"TikTok sent an unreadable answer: {exc}")
    return Failure(FailureKind.TIKTOK_ERROR, f"TikTok refused the request: {exc}")


def explain(exc: BaseException) -> Failure:
    """A failure, above all one talking to TikTok, as its kind and one readable line (never a secret)."""
    if isinstance(exc, errors.TikTokError):
        return _explain_tiktok(exc)
    if isinstance(exc, StoreBusyError):
        kind = FailureKind.BUSY
    elif isinstance(exc, StoreError):
        kind = FailureKind.STORE
    elif isinstance(exc, SecretKeyError):
        kind = FailureKind.SECRET_KEY
    elif isinstance(exc, AccountError):
        kind = FailureKind.ACCOUNT
    else:
        kind = FailureKind.UNEXPECTED
    return Failure(kind, _first_line(exc))


def explain_error(exc: BaseException) -> str:
    """A failure talking to TikTok as one readable line (never a secret): `explain(exc).message`."""
    return explain(exc).message


def authorization_refused(exc: BaseException) -> bool:
    """True when TikTok refused the shop's authorization itself (the account must be reconnected).

    A refused request time is not one: see `_clock_problem`.
    """
    return isinstance(exc, errors.TikTokError) and explain(exc).kind is FailureKind.AUTHORIZATION
