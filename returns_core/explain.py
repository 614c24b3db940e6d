"""Every failure as one readable line with its kind: the app-wide explainer.

Callers decide by `Failure.kind` (reconnect, retry, wait...), never by reading the words, so a
message can be reworded without changing what the app does. No message carries a secret: the
TikTok client scrubs them from its errors, and nothing else here sees one.
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass
from enum import Enum

from returns_core.accounts import AccountError, AccountInputError
from returns_core.filters import FilterError
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
    INPUT = "input"  # what the user typed cannot be used as it is: fix it and try again
    FILE = "file"  # a file or folder (an export, a backup) could not be read or written
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


# What to do about a file that could not be written or read, by the operating system's reason
_FILE_ADVICE = {
    errno.ENOSPC: "the disk is full: free some space or choose another place",
    errno.EDQUOT: "the disk quota is used up: free some space or choose another place",
    errno.EFBIG: "the file grew larger than this system allows here: choose another place",
    errno.EACCES: "permission denied: fix its permissions, or choose a place that is yours",
    errno.EPERM: "permission denied: fix its permissions, or choose a place that is yours",
    errno.EROFS: "the disk is read-only: choose another place",
    errno.ENOENT: "the folder does not exist: create it first or choose another",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
    errno.EISDIR: "it is a folder: give a file's path",
    errno.EEXIST: "it exists already: choose a new name",
    errno.ENOTEMPTY: "a folder of that name exists and is not empty: choose a new name",
    errno.ENAMETOOLONG: "the name is too long: choose a shorter path",
}


def _explain_file(exc: OSError) -> Failure:
    where = f" {exc.filename}" if exc.filename else ""
    advice = _FILE_ADVICE.get(exc.errno or 0)
    if advice is None:
        advice = f"{(exc.strerror or _first_line(exc)).rstrip('.')}: check the path and the disk"
    return Failure(FailureKind.FILE, f"Cannot use{where}: {advice}.")


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
    elif isinstance(exc, FilterError | AccountInputError):
        kind = FailureKind.INPUT
    elif isinstance(exc, AccountError):
        kind = FailureKind.ACCOUNT
    elif isinstance(exc, OSError):
        return _explain_file(exc)
    else:
        kind = FailureKind.UNEXPECTED
    return Failure(kind, _first_line(exc))


def explain_error(exc: BaseException) -> str:
    """A failure talking to TikTok as one readable line (never a secret): `explain(exc).message`."""
    return explain(exc).message


# --- connecting a shop: the credentials were just typed, so say which one TikTok refused -----------

APP_SECRET_REFUSED = ("TikTok refused the request's signature: the app secret does not belong to this app key. "
                      "Copy the app secret from TikTok Shop Partner Center again")
APP_KEY_REFUSED = "TikTok does not know this app key: copy it from TikTok Shop Partner Center again"
APP_CREDENTIALS_REFUSED = ("TikTok refused the app key or the app secret: copy both from TikTok Shop Partner "
                           "Center again")
ACCESS_TOKEN_REFUSED = ("TikTok refused the access token: it is wrong, revoked or for another app. Paste the seller's "
                        "current access token, or connect with an authorization code instead")
REFRESH_TOKEN_REFUSED = ("TikTok refused the refresh token: it is wrong, already used or revoked. Paste the seller's "
                         "current tokens, or connect with an authorization code instead")
AUTH_CODE_REFUSED = ("TikTok refused the authorization code: it is wrong, already used or expired (a code works once, "
                     "for about 30 minutes). Ask the seller to authorize the app again and paste the new code")
UNREACHABLE = ("Cannot reach TikTok at the address given ({detail}): check the API base and auth base addresses "
               "and this computer's network connection")
SCOPE_REFUSED = ("TikTok says the app lacks a permission this needs: give the app the Return and Refund scopes in "
                 "TikTok Shop Partner Center, then have the seller authorize it again")
ADDRESS_REFUSED = ("TikTok refused this computer's IP address: add it to the app's IP allow-list in TikTok Shop "
                   "Partner Center")


def explain_connect(exc: BaseException) -> Failure:
    """A failure while connecting a shop, naming what TikTok refused (app key, app secret, token,
    code) or could not reach, so the user knows which field to fix (docs section 6: 36009004 is
    one code for many causes, its message says which)."""
    if isinstance(exc, errors.TransportError):
        return Failure(FailureKind.NETWORK, UNREACHABLE.format(detail=exc))
    if not isinstance(exc, errors.AuthError) or _clock_problem(exc):
        return explain(exc)
    said = re.sub(r"[\s_-]+", "_", (exc.message or "").lower())  # "app secret", "app_secret", "x-tts-access-token"
    if isinstance(exc, errors.AuthCodeInvalidError):
        reason = AUTH_CODE_REFUSED
    elif isinstance(exc, errors.RefreshTokenInvalidError):
        reason = REFRESH_TOKEN_REFUSED
    elif exc.code == errors.SIGN_INVALID:
        reason = APP_SECRET_REFUSED
    elif exc.code == errors.SCOPE_MISSING:
        reason = SCOPE_REFUSED
    elif exc.code == errors.IP_NOT_ALLOWED:
        reason = ADDRESS_REFUSED
    elif "app_secret" in said:
        reason = APP_CREDENTIALS_REFUSED
    elif "app_key" in said:
        reason = APP_KEY_REFUSED
    elif "token" in said or exc.code == errors.TOKEN_EXPIRED:
        reason = ACCESS_TOKEN_REFUSED
    else:
        return explain(exc)
    return Failure(FailureKind.AUTHORIZATION, f"{reason} ({exc}).")


def authorization_refused(exc: BaseException) -> bool:
    """True when TikTok refused the shop's authorization itself (the account must be reconnected).

    A refused request time is not one: see `_clock_problem`.
    """
    return isinstance(exc, errors.TikTokError) and explain(exc).kind is FailureKind.AUTHORIZATION
