"""Who acts and what they may do: the signed-in user and role with login; without login, the name the
person chose, remembered in their browser (a cookie) across reloads and tabs, and asked for where they act.

The name is read from the cookie the browser sends when a session starts (st.context.cookies) and
written by a line of JavaScript (st.html) when the person picks it: Streamlit reads cookies but does
not set them. It is a convenience, not a login: anyone at that browser acts under that name.
"""

from __future__ import annotations

import contextlib
import json
from urllib.parse import unquote

import streamlit as st

from app_ui.formatting import md_escape
from app_ui.runtime import secret_section
from returns_core import roles

ACTOR_KEY = "actor_name"  # the chosen name in this session (without login)
MAX_ACTOR_LENGTH = 100
COOKIE = "returns_desk_actor"
COOKIE_DAYS = 365
_COOKIE_READ_KEY = "_actor_cookie_read"
_COOKIE_PENDING_KEY = "_actor_cookie_pending"
ASK_LABEL = "Who is deciding? Your name"


class InvalidName(ValueError):
    """A name that cannot be recorded, with why."""


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
    """Who acts: the signed-in email with login, else the name chosen in this browser; None if unknown."""
    if login_configured():
        return _signed_in_email()
    if not st.session_state.get(_COOKIE_READ_KEY):
        # once per session: the browser sends its cookies when the session starts
        st.session_state[_COOKIE_READ_KEY] = True
        # no name remembered (or one we would not record): they are asked when they act
        with contextlib.suppress(InvalidName):
            if not st.session_state.get(ACTOR_KEY):
                st.session_state[ACTOR_KEY] = clean_name(unquote(st.context.cookies.get(COOKIE) or ""))
    name = str(st.session_state.get(ACTOR_KEY) or "").strip()
    return name[:MAX_ACTOR_LENGTH] or None


def clean_name(text: str) -> str:
    """A name as it will be recorded in the history; InvalidName says why not."""
    name = " ".join((text or "").split())
    if not name:
        raise InvalidName("Enter your name: it is recorded with every change you make.")
    if len(name) > MAX_ACTOR_LENGTH:
        raise InvalidName(f"The name is too long ({len(name)} characters; at most {MAX_ACTOR_LENGTH}).")
    if any(not ch.isprintable() for ch in name):
        raise InvalidName("The name has characters that cannot be recorded; use letters, digits and spaces.")
    return name


def remember(text: str) -> str:
    """Use this name from now on in this session, and in this browser's next sessions (reloads, new tabs).

    The browser learns it when `write_cookie` draws next, in this run.
    """
    name = clean_name(text)
    st.session_state[ACTOR_KEY] = name
    st.session_state[_COOKIE_PENDING_KEY] = name
    return name


def write_cookie(where=st) -> None:
    """Have the browser keep the name just chosen (a cookie, sent when each next session starts)."""
    name = st.session_state.pop(_COOKIE_PENDING_KEY, None)
    if not name:
        return
    # the name is a JSON string literal inside the script: quotes and "</script>" cannot break out of it
    value = json.dumps(name).replace("<", "\\u003c")
    where.html(f"<script>document.cookie = {json.dumps(COOKIE + '=')} + encodeURIComponent({value}) + "
               f"'; path=/; max-age={COOKIE_DAYS * 86400}; SameSite=Lax';</script>", unsafe_allow_javascript=True)


def ask_name(key: str) -> str | None:
    """Who acts; without login and without a name, ask for it right here (in the card or dialog the person
    is in) and return None until they give it."""
    write_cookie()  # a name just given here reaches the browser in this run, even inside a dialog
    if login_configured() or current_actor():
        return current_actor()
    # a form: the name goes with the click (or Enter) itself. Outside a form, the click first blurs the box,
    # whose own rerun could swallow the click, and the person had to click again.
    with st.form(f"{key}_name_form", border=False):
        typed_col, use_col = st.columns([3, 2], vertical_alignment="bottom")
        typed_col.text_input(ASK_LABEL, key=f"{key}_name", max_chars=MAX_ACTOR_LENGTH, placeholder="e.g. Mia",
                             help="Recorded with every change you make; this browser remembers it.")
        # a callback: the run it starts already knows the name, the sidebar included
        use_col.form_submit_button("Use this name", key=f"{key}_use_name", width="stretch", on_click=_use_name,
                                   args=(f"{key}_name",))
    if why := st.session_state.pop(f"{key}_name_error", None):
        st.error(md_escape(why))
    return None


def _use_name(field: str) -> None:
    try:
        remember(st.session_state.get(field) or "")
    except InvalidName as exc:
        st.session_state[f"{field}_error"] = str(exc)


def current_permissions() -> frozenset[str]:
    """What the current user may do: everything locally, the role's permissions with login."""
    return roles.permissions_for(login_configured(), _signed_in_email(), secret_section("roles"))


def current_role() -> str:
    """The role in words ("admin" on a local machine without login)."""
    if not login_configured():
        return roles.LOCAL_ROLE
    return roles.role_for(_signed_in_email(), secret_section("roles"))


def render_identity() -> None:
    """Sidebar: the signed-in user and role (with log in/out), or the name this browser acts under (to change)."""
    if login_configured():
        email = _signed_in_email()
        if email:
            st.sidebar.caption(f"Signed in as **{md_escape(email)}** ({current_role()})")
            if st.sidebar.button("Log out", key="wf_logout", icon=":material/logout:"):
                st.logout()
        elif st.sidebar.button("Log in", key="wf_login", icon=":material/login:"):
            st.login()
        return
    name = current_actor()
    with st.sidebar.popover(f"Acting as {md_escape(name)}" if name else "Your name", icon=":material/person:",
                            width="stretch", help="No login is configured: the name is written beside each "
                                                  "change, and this browser remembers it."):
        st.text_input("Your name", value=name or "", key="identity_name", max_chars=MAX_ACTOR_LENGTH)
        st.button("Save", key="identity_save", on_click=_use_name, args=("identity_name",))
        if why := st.session_state.pop("identity_name_error", None):
            st.error(md_escape(why))
    write_cookie(st.sidebar)


def block_reason(actor: str | None, permissions: frozenset[str], permission: str = roles.ACT, *,
                 need_actor: bool = True) -> str | None:
    """Why the current user cannot change anything here, or None when they can."""
    if permission not in permissions:
        if login_configured() and not _signed_in_email():
            return "Read only: log in (sidebar) to act on returns."
        return ("Read only: your role is analyst. Managers act and sign off; ask an admin to add your email "
                "to `managers` under [roles] in secrets.toml.")
    if need_actor and not actor:
        return ("Say who you are first (your name, at the top of the sidebar): every change is recorded with "
                "who made it.")
    return None


def resolve(actor: str | None, permissions: frozenset[str] | None) -> tuple[str | None, frozenset[str]]:
    """The actor and permissions given, or the current user's."""
    return (actor if actor is not None else current_actor(),
            permissions if permissions is not None else current_permissions())
