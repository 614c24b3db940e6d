"""Seller authorization: one-use auth codes, access and refresh tokens (docs section 3).

A grant is one seller authorization (covering some shops) of one app. token/get opens a grant; each
refresh issues a new access + refresh token in the same grant and retires the old refresh token;
revoking any token revokes its grant. Times are world times, so advancing the clock expires tokens too.

Apps: TikTok authorizes shops per developer app, and an agency may run several apps (one per
region, or per group of clients). The sandbox has one app by default, the public demo app; with
more, its shops are split between them in blocks, and a code or token of one app is refused with
another app's key, as TikTok refuses it.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass

from .. import errors
from .catalogue import DAY, Catalogue
from .envelope import ApiFailure

# Public demo credentials of the sandbox's first app. They only ever open the sandbox; never use them elsewhere.
SANDBOX_APP_KEY = "sandbox-demo-app-key"
SANDBOX_APP_SECRET = "sandbox-demo-app-secret-public"
MAX_APPS = 64
AUTH_CODE_TTL = 30 * 60
ACCESS_TOKEN_TTL = 7 * DAY
REFRESH_TOKEN_TTL = 365 * DAY
GRANTED_SCOPES = ("seller.authorization.info", "seller.return_refund.basic", "seller.order.info")


@dataclass(frozen=True)
class App:
    """A developer app: its credentials and the shops whose sellers authorized it."""

    key: str
    secret: str
    shop_ids: tuple[str, ...]


def make_apps(count: int, shop_ids: list[str]) -> list[App]:
    """`count` apps sharing the shops in blocks; the first is the public demo app (the only one by default)."""
    if not 1 <= count <= min(MAX_APPS, len(shop_ids)):
        raise ValueError(f"apps must be between 1 and {min(MAX_APPS, len(shop_ids))} (one shop each at least), "
                         f"got {count}")
    apps = []
    for n in range(count):
        block = tuple(shop_ids[len(shop_ids) * n // count: len(shop_ids) * (n + 1) // count])
        key, secret = ((SANDBOX_APP_KEY, SANDBOX_APP_SECRET) if n == 0
                       else (f"sandbox-app-{n + 1}-key", f"sandbox-app-{n + 1}-secret-public"))
        apps.append(App(key, secret, block))
    return apps


@dataclass
class Grant:
    shop_ids: list[str]
    revoked: bool = False
    app_key: str = SANDBOX_APP_KEY  # state files from before apps: the demo app's


@dataclass
class AuthCode:
    shop_ids: list[str]
    expires: int
    used: bool = False
    app_key: str = SANDBOX_APP_KEY


@dataclass
class Token:
    grant: str
    expires: int
    used: bool = False  # refresh tokens: spent by a refresh


class AuthStore:
    def __init__(self, catalogue: Catalogue, apps: list[App] | None = None):
        self._catalogue = catalogue
        self.apps = apps or make_apps(1, [shop.id for shop in catalogue.shops])
        self._apps = {app.key: app for app in self.apps}
        self.codes: dict[str, AuthCode] = {}
        self.grants: dict[str, Grant] = {}
        self.access: dict[str, Token] = {}
        self.refresh: dict[str, Token] = {}

    def app(self, app_key: str | None) -> App:
        """The app with this key (None: the first); ValueError for a key no app has."""
        if app_key is None:
            return self.apps[0]
        if app_key not in self._apps:
            raise ValueError(f"no sandbox app has the key {app_key!r}")
        return self._apps[app_key]

    def secret_of(self, app_key: str) -> str | None:
        """The app secret of this key, or None when no app has it."""
        app = self._apps.get(app_key)
        return app.secret if app else None

    def issue_code(self, shop_ids: list[str] | None, now: int, app_key: str | None = None) -> str:
        app = self.app(app_key)
        code = "TTP_" + secrets.token_urlsafe(24)
        self.codes[code] = AuthCode(self._shop_ids(shop_ids, app), now + AUTH_CODE_TTL, app_key=app.key)
        return code

    def issue_tokens(self, shop_ids: list[str] | None, now: int, app_key: str | None = None) -> dict:
        app = self.app(app_key)
        grant_id = secrets.token_hex(8)
        self.grants[grant_id] = Grant(self._shop_ids(shop_ids, app), app_key=app.key)
        return self._new_tokens(grant_id, now)

    def exchange_code(self, code: str, now: int, app_key: str = SANDBOX_APP_KEY) -> dict:
        """token/get: a code works once, within 30 minutes, for the app it was issued to."""
        entry = self.codes.get(code)
        if entry is None or entry.app_key != app_key:
            raise ApiFailure(errors.AUTH_CODE_INVALID, "Invalid auth code: it was not issued by this app.")
        if entry.used:
            raise ApiFailure(errors.AUTH_CODE_INVALID, "Invalid auth code: it was already used.")
        if now >= entry.expires:
            raise ApiFailure(errors.AUTH_CODE_INVALID, "Invalid auth code: it expired (codes live 30 minutes).")
        entry.used = True
        return self.issue_tokens(entry.shop_ids, now, app_key)

    def refresh_tokens(self, refresh_token: str, now: int, app_key: str = SANDBOX_APP_KEY) -> dict:
        """token/refresh: a new pair; the old refresh token stops working."""
        token = self.refresh.get(refresh_token)
        if token is None or self.grants[token.grant].app_key != app_key:
            raise ApiFailure(errors.AUTH_CODE_INVALID, "Invalid refresh token: it was not issued by this app.")
        if self.grants[token.grant].revoked:
            raise ApiFailure(errors.AUTH_CODE_INVALID, "Invalid refresh token: the seller revoked the authorization.")
        if token.used:
            raise ApiFailure(errors.AUTH_CODE_INVALID, "Invalid refresh token: it was already used; "
                                                       "use the refresh token from the latest refresh.")
        if now >= token.expires:
            raise ApiFailure(errors.AUTH_CODE_INVALID, "Invalid refresh token: it expired.")
        token.used = True
        return self._new_tokens(token.grant, now)

    def authorized_shops(self, access_token: str, now: int, app_key: str = SANDBOX_APP_KEY) -> list[str]:
        """Shop ids the token may act for; raises the error TikTok gives for a bad token."""
        token = self.access.get(access_token)
        if token is None or self.grants[token.grant].app_key != app_key:
            raise ApiFailure(errors.COMMON_PARAM_INVALID,
                             "Invalid credentials. The x-tts-access-token is invalid: it was not issued by this app.")
        grant = self.grants[token.grant]
        if grant.revoked:
            raise ApiFailure(errors.COMMON_PARAM_INVALID, "Invalid credentials. The x-tts-access-token is invalid: "
                                                          "the seller revoked the authorization.")
        if now >= token.expires:
            raise ApiFailure(errors.TOKEN_EXPIRED,
                             "Expired credentials. The `access_token` or `x-tts-access-token` header has expired.")
        return grant.shop_ids

    def expire(self, access_token: str, now: int) -> None:
        if access_token not in self.access:
            raise ValueError("unknown access token")
        self.access[access_token].expires = now

    def revoke(self, token: str) -> list[str]:
        """Revoke the token's grant; returns the shops it covered (each now deauthorized).

        TikTok keeps one authorization per app and shop; the sandbox's extra grants (one per
        issue_tokens) are a convenience, so revoking any of them deauthorizes its shops.
        """
        found = self.access.get(token) or self.refresh.get(token)
        if found is None:
            raise ValueError("unknown token")
        grant = self.grants[found.grant]
        grant.revoked = True
        return list(grant.shop_ids)

    def authorization_expiry(self, shop_id: str) -> int | None:
        """When the shop's authorization lapses: the latest refresh-token expiry of a live grant
        covering it (a seller must authorize again after that); None when no grant covers it."""
        live = {grant_id for grant_id, grant in self.grants.items() if not grant.revoked and shop_id in grant.shop_ids}
        ends = [token.expires for token in self.refresh.values() if token.grant in live]
        return max(ends) if ends else None

    def _new_tokens(self, grant_id: str, now: int) -> dict:
        access, refresh = "TTP_" + secrets.token_urlsafe(32), "TTP_" + secrets.token_urlsafe(32)
        self.access[access] = Token(grant_id, now + ACCESS_TOKEN_TTL)
        self.refresh[refresh] = Token(grant_id, now + REFRESH_TOKEN_TTL)
        first_shop = self._catalogue.shop_by_id(self.grants[grant_id].shop_ids[0])
        assert first_shop is not None
        return {
            "access_token": access,
            "access_token_expire_in": now + ACCESS_TOKEN_TTL,  # an absolute timestamp, despite the name
            "refresh_token": refresh,
            "refresh_token_expire_in": now + REFRESH_TOKEN_TTL,
            "open_id": self._catalogue.open_id,
            "seller_name": self._catalogue.seller_name,
            "seller_base_region": first_shop.region,
            "user_type": 0,
            "granted_scopes": list(GRANTED_SCOPES),
        }

    def _shop_ids(self, shop_ids: list[str] | None, app: App) -> list[str]:
        if shop_ids is None:
            return list(app.shop_ids)
        unknown = [s for s in shop_ids if s not in app.shop_ids]
        if unknown or not shop_ids:
            raise ValueError(f"shop ids {unknown} are not among the shops of app {app.key}: {list(app.shop_ids)}"
                             if unknown else "no shop ids given")
        return list(shop_ids)

    # --- persistence ---------------------------------------------------------------------------

    def to_json(self) -> dict:
        return {"codes": {k: asdict(v) for k, v in self.codes.items()},
                "grants": {k: asdict(v) for k, v in self.grants.items()},
                "access": {k: asdict(v) for k, v in self.access.items()},
                "refresh": {k: asdict(v) for k, v in self.refresh.items()}}

    def merge(self, doc: dict) -> None:
        """Fold in what another process sharing the state file issued or spent (used, revoked and
        expired win, so nothing that was refused anywhere becomes valid again)."""
        other = AuthStore(self._catalogue, self.apps)
        other.load(doc)
        for code, entry in other.codes.items():
            self.codes.setdefault(code, entry).used |= entry.used
        for grant_id, grant in other.grants.items():
            self.grants.setdefault(grant_id, grant).revoked |= grant.revoked
        for token, access in other.access.items():
            mine = self.access.setdefault(token, access)
            mine.expires = min(mine.expires, access.expires)
        for token, refresh in other.refresh.items():
            self.refresh.setdefault(token, refresh).used |= refresh.used

    def load(self, doc: dict) -> None:
        self.codes = {k: AuthCode(**v) for k, v in doc.get("codes", {}).items()}
        self.grants = {k: Grant(**v) for k, v in doc.get("grants", {}).items()}
        self.access = {k: Token(**v) for k, v in doc.get("access", {}).items()}
        self.refresh = {k: Token(**v) for k, v in doc.get("refresh", {}).items()}
