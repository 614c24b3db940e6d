"""Who acts and what they may do: the signed-in user and role, or the name typed in the sidebar."""

from __future__ import annotations

import streamlit as st

from app_ui.runtime import secret_section
from returns_core import roles

ACTOR_KEY = "actor_name"  # the sidebar's "Your name" when login is not configured
MAX_ACTOR_LENGTH = 100


def login_configured() -> bool:
    """True when secrets.toml has an [auth] section (st.login with OIDC)."""
    return bool(secret_section("auth"))


def _signed_in_email() -> str | None:
    """The signed-in user's email, when login is configured and someone is signed in."""
    if not login_configured() or not st.user.get("is_logged_in"):
        return None
    email = st.user.get("email")
    return str(email) if email else None


def current_actor() -> str | None:
    """Who acts: the signed-in email with login, else the name typed in the sidebar; None if unknown."""
    if login_configured():
        return _signed_in_email()
    name = str(st.session_state.get(ACTOR_KEY) or "").strip()
    return name[:MAX_ACTOR_LENGTH] or None


def current_permissions() -> frozenset[str]:
    """What the current user may do: everything locally, the role's permissions with login."""
    return roles.permissions_for(login_configured(), _signed_in_email(), secret_section("roles"))


def current_role() -> str:
    """The role in words ("admin" on a local machine without login)."""
    if not login_configured():
        return roles.LOCAL_ROLE
    return roles.role_for(_signed_in_email(), secret_section("roles"))


def render_identity() -> None:
    """Sidebar: the signed-in user and role (with log in/out), or a "Your name" box without login."""
    if login_configured():
        email = _signed_in_email()
        if email:
            st.sidebar.caption(f"Signed in as **{email}** ({current_role()})")
            if st.sidebar.button("Log out", key="wf_logout", icon=":material/logout:"):
                st.logout()
        elif st.sidebar.button("Log in", key="wf_login", icon=":material/login:"):
            st.login()
        return
    st.sidebar.text_input(
        "Your name", key=ACTOR_KEY, max_chars=MAX_ACTOR_LENGTH, placeholder="Recorded in the history",
        help="No login is configured, so everyone may act; your name is written beside each change.",
    )


def block_reason(actor: str | None, permissions: frozenset[str], permission: str = roles.ACT, *,
                 need_actor: bool = True) -> str | None:
    """Why the current user cannot change anything here, or None when they can."""
    if permission not in permissions:
        if login_configured() and not _signed_in_email():
            return "Read only: log in (sidebar) to act on returns."
        return ("Read only: your role is analyst. Managers act and sign off; ask an admin to add your email "
                "to `managers` under [roles] in secrets.toml.")
    if need_actor and not actor:
        return "Enter your name in the sidebar first: every change is recorded with who made it."
    return None


def resolve(actor: str | None, permissions: frozenset[str] | None) -> tuple[str | None, frozenset[str]]:
    """The actor and permissions given, or the current user's."""
    return (actor if actor is not None else current_actor(),
            permissions if permissions is not None else current_permissions())
