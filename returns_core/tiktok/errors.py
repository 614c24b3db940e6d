"""Typed errors for the TikTok Shop API (docs/tiktok_api.md section 6).

Every error carries code, message and request_id, and its str() is one readable line that
never contains a token or secret.
"""

from __future__ import annotations

# Codes by meaning. Shared by the client (to classify) and the sandbox (to answer).
OK = 0
SIGN_INVALID = 106001
COMMON_PARAM_INVALID = 36009004  # missing sign, bad timestamp, bad token, bad app_key, bad cipher...
TOKEN_EXPIRED = 105002
SCOPE_MISSING = 105005
TOKEN_SHOP_MISMATCH = 101000
IP_NOT_ALLOWED = 36009033
SHOP_CIPHER_MISSING = 106013
AUTH_CODE_INVALID = 36004004
TOO_MANY_REQUESTS = 36009002
INTERNAL_ERROR = 36009003
REQUEST_TIMEOUT = 36009007
INVALID_PATH = 36009009
INVALID_METHOD = 36009010
INVALID_VERSION = 36009014
BODY_NOT_JSON = 36009022
# business errors on approve / reject (section 4.3)
ALREADY_DECIDED = 25020010
DECISION_NOT_FIT = 25020004
QUICK_REFUND_ACTIVE = 25011025
NO_PERMISSION = 25020005
REASON_INVALID = 25001020
# our own, for parameter errors the sandbox reports (TikTok uses a generic invalid-param code)
INVALID_PARAMETER = 36009001

RETRYABLE_CODES = frozenset({TOO_MANY_REQUESTS, INTERNAL_ERROR, REQUEST_TIMEOUT})
AUTH_CODES = frozenset({SIGN_INVALID, COMMON_PARAM_INVALID, SCOPE_MISSING, TOKEN_SHOP_MISMATCH,
                        IP_NOT_ALLOWED, SHOP_CIPHER_MISSING, AUTH_CODE_INVALID})


class TikTokError(Exception):
    """Any failure talking to TikTok. `code` is TikTok's code (None for transport failures)."""

    def __init__(self, message: str, code: int | None = None, request_id: str | None = None,
                 http_status: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.request_id = request_id
        self.http_status = http_status

    def __str__(self) -> str:
        bits = [self.message]
        if self.code is not None:
            bits.append(f"(code {self.code}")
            bits[-1] += f", request {self.request_id})" if self.request_id else ")"
        return " ".join(bits)


class ApiError(TikTokError):
    """TikTok answered with a non-zero code."""


class AuthError(ApiError):
    """Credentials were refused: bad signature, app key, token, cipher or scope. Never retried."""


class TokenExpiredError(AuthError):
    """The access token expired (105002): refresh it."""


class RefreshTokenInvalidError(AuthError):
    """The refresh token was refused: the shop must be reconnected (account becomes Invalid)."""


class AuthCodeInvalidError(AuthError):
    """The authorization code is invalid, used or expired (36004004)."""


class RateLimitedError(ApiError):
    """Too many requests (429 / 36009002), still failing after the retries."""


class ServerError(ApiError):
    """TikTok's side failed (5xx, 36009003, 36009007), still failing after the retries."""


class BusinessError(ApiError):
    """A request TikTok understood but refused, e.g. a decision that does not fit the return."""


class ParameterError(ApiError):
    """A request TikTok could not accept as sent (bad page size, path, method, version...)."""


class TransportError(TikTokError):
    """Network trouble: timeout, connection refused or reset. Retried, then raised."""


class MalformedResponseError(TikTokError):
    """TikTok's answer could not be read (truncated or not JSON, or missing fields)."""


def error_for(code: int, message: str, request_id: str | None, http_status: int | None) -> ApiError:
    """The typed exception for a TikTok error code."""
    if code == TOKEN_EXPIRED:
        cls: type[ApiError] = TokenExpiredError
    elif code == AUTH_CODE_INVALID:
        cls = AuthCodeInvalidError
    elif code in AUTH_CODES:
        cls = AuthError
    elif code == TOO_MANY_REQUESTS:
        cls = RateLimitedError
    elif code in (INTERNAL_ERROR, REQUEST_TIMEOUT):
        cls = ServerError
    elif 25000000 <= code < 26000000:
        cls = BusinessError
    else:
        cls = ParameterError
    return cls(message, code=code, request_id=request_id, http_status=http_status)
