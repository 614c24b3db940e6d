"""Times in words, the same on every page (times are stored as naive UTC), and values made safe for Markdown."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import streamlit as st

from returns_core.store.db import utcnow


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """'5 min ago' style, for times stored as naive UTC."""
    if when is None:
        return "never"
    seconds = int(((now or utcnow()) - when).total_seconds())
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


# --- times in the viewer's time zone ------------------------------------------------------------
# Stored and exported in UTC; shown in the zone the browser reports (st.context.timezone), always
# with the zone's name, so a time is never read in the wrong zone. These are the only functions
# that turn a stored time into text or set up a time column.

UTC_ZONE = "UTC"
TIME_COLUMN_FORMAT = "D MMM YYYY, HH:mm"  # the same as local_time, in moment.js words (st.column_config)
DATE_COLUMN_FORMAT = "D MMM"


def viewer_zone() -> str:
    """The viewer's time zone (IANA name, from the browser), or UTC when the browser did not say."""
    name = st.context.timezone
    if name:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):  # the browser sent a name this machine does not know
            return UTC_ZONE
        return name
    return UTC_ZONE


def zone_note(zone: str | None = None) -> str:
    """Which zone the times on the page are in, for a caption or a column's help."""
    zone = zone or viewer_zone()
    if zone == UTC_ZONE and not st.context.timezone:
        return "Times in UTC (the browser did not tell its time zone)."
    return f"Times in {zone}."


def _is_missing(when: object) -> bool:
    # pandas hands over NaT for a missing time, and NaT is not equal to itself
    return when is None or when != when


def in_zone(when: datetime, zone: str | None = None) -> datetime:
    """A stored (naive UTC) time as an aware time in the viewer's zone (or `zone`)."""
    return when.replace(tzinfo=UTC).astimezone(ZoneInfo(zone or viewer_zone()))


def local_time(when: datetime | None, *, zone: str | None = None, labelled: bool = True,
               now: datetime | None = None) -> str:
    """'14 Dec, 09:30 (Europe/Berlin)' in the viewer's zone (the year only when it is not this year), '—' if unknown.

    `labelled=False` leaves the zone's name out, for a table whose caption or header names it.
    """
    if _is_missing(when):
        return "—"
    zone = zone or viewer_zone()
    here = in_zone(when, zone)
    year = "" if here.year == in_zone(now or utcnow(), zone).year else f" {here.year}"
    text = f"{here.day} {here:%b}{year}, {here:%H:%M}"
    return f"{text} ({zone})" if labelled else text


def until(when: datetime | None, now: datetime | None = None) -> str:
    """How far off a time is: 'in 5 h', 'in 2 d', 'in 40 min', or '3 h ago' once it has passed; '' if unknown."""
    if _is_missing(when):
        return ""
    seconds = int((when - (now or utcnow())).total_seconds())
    span = abs(seconds)
    if span < 3600:
        words = f"{max(1, span // 60)} min"
    elif span < 2 * 86400:
        words = f"{span // 3600} h"
    else:
        words = f"{span // 86400} d"
    return f"in {words}" if seconds >= 0 else f"{words} ago"


def time_column(label: str | None = None, *, help: str | None = None, width: int | None = None,  # noqa: A002
                date_only: bool = False) -> st.column_config.Column:
    """A st.dataframe column of stored times, shown in the viewer's zone, named in its help.

    `date_only`: the day alone ('14 Dec'), where a table has no room for more.
    """
    zone = viewer_zone()
    note = zone_note(zone)
    return st.column_config.DatetimeColumn(label, format=DATE_COLUMN_FORMAT if date_only else TIME_COLUMN_FORMAT,
                                           timezone=zone, width=width, help=f"{help} {note}" if help else note)


# --- values from a URL, TikTok or a user inside Markdown ------------------------------------------

# What Streamlit's Markdown (CommonMark, GFM and its own additions) would read as syntax in a value.
# Syntax is escaped with a backslash (an escaped punctuation character is always literal text); text
# keeps its usual punctuation (. , ' " - ( ) / ...) where it cannot start anything.
_ANYWHERE = re.compile(r"[\\`*~$|\[\]<]")  # escapes, code, emphasis, strikethrough, math, tables, links, HTML
_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")  # emphasis; "RETURN_OR_REFUND" stays as it is
_LINE_START = re.compile(r"(?m)^([ \t]*)([#>+=-]|\d+[.)])")  # headings, quotes, lists, setext lines
_ENTITY = re.compile(r"&(?=#?\w+;)")  # "&lt;" would show as "<"
# Some are found in the text after parsing, escapes already resolved, so a backslash cannot stop them:
# bare addresses (https://..., www.x.y, a@b.c) become links, and ":material/home:" and ":smile:"
# icons and emoji. An invisible word joiner (U+2060) breaks each pattern; before a name, the colon is
# also escaped, as it starts Streamlit's directives (":red[...]", ":blue-badge[...]", even ":red" alone).
_BARE_LINK = re.compile(r"(?<=https:)(?=//)|(?<=http:)(?=//)|(?<=www)(?=\.)|(?<=@)", re.IGNORECASE)
_NAME_AFTER_COLON = re.compile(r":(?=[^\W\d_]|[\w+-]+:)")  # a letter, or a shortcode such as ":+1:"
WORD_JOINER = "\u2060"


def md_escape(value: object, *, code: bool = False) -> str:
    """A value from a URL, TikTok or a user, shown literally where Streamlit renders Markdown.

    Use it for every such value in st.markdown, st.write of text, st.caption, st.info/warning/error/
    success, st.toast, titles, labels, help texts, options, dialog titles and column help, so that
    `[Log in again](https://evil.example)`, `https://evil.example` or `![x](http://host/pixel.png)`
    shows as typed and is never a link, an image or HTML. `code=True` gives an inline code span
    instead (nothing in it is a link; backslashes are not escapes there), fenced by more backticks
    than the value holds in a row.
    """
    text = "" if value is None else str(value)
    if code:
        fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
        # a space inside the fence keeps a backtick at either end, or spaces at both, as they are
        pad = " " if text[:1] == "`" or text[-1:] == "`" or (text[:1] == text[-1:] == " " and text.strip()) else ""
        return f"{fence}{pad}{text}{pad}{fence}" if text else ""
    text = _ANYWHERE.sub(lambda m: "\\" + m[0], _BARE_LINK.sub(WORD_JOINER, text))
    text = _UNDERSCORE.sub(r"\\_", _ENTITY.sub(r"\\&", text))
    text = _LINE_START.sub(lambda m: m[1] + (m[2][:-1] + "\\" + m[2][-1] if m[2][0].isdigit() else "\\" + m[2]),
                           text)
    return _NAME_AFTER_COLON.sub("\\\\:" + WORD_JOINER, text)
