"""Who may do what, when login is configured.

Roles are set by email in secrets.toml:

    [roles]
    admins = ["owner@shop.com"]
    managers = ["lead@shop.com"]
    analysts = ["*"]        # "*" means every signed-in user

Analysts read; managers also act on TikTok, change status, note and sign off; admins also manage
accounts. A signed-in user on no list reads only. Without login (a local machine), everything is
allowed: the README says so.
"""

from __future__ import annotations

from collections.abc import Mapping

READ = "read"
ACT = "act"  # approve/reject on TikTok, change status, notes, sign-off, re-sync
MANAGE_ACCOUNTS = "manage_accounts"  # add, reconnect, disable accounts; settings

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "analyst": frozenset({READ}),
    "manager": frozenset({READ, ACT}),
    "admin": frozenset({READ, ACT, MANAGE_ACCOUNTS}),
}
_LISTS = (("admin", "admins"), ("manager", "managers"), ("analyst", "analysts"))
LOCAL_ROLE = "admin"


def role_for(email: str | None, roles_config: Mapping | None) -> str:
    """The highest role whose list names this email (case-insensitive) or "*"; analyst otherwise."""
    who = (email or "").strip().lower()
    config = roles_config or {}
    for role, key in _LISTS:
        listed = {str(e).strip().lower() for e in config.get(key, ())}
        if who and (who in listed or "*" in listed):
            return role
    return "analyst"


def permissions_for(login_configured: bool, email: str | None, roles_config: Mapping | None) -> frozenset[str]:
    """What the current user may do: everything locally, the role's permissions with login."""
    role = role_for(email, roles_config) if login_configured else LOCAL_ROLE
    return ROLE_PERMISSIONS[role]
