"""Alerts: rules over the store, sent once per subject and rule through apprise channels.

The rules (`RULES`; on/off and threshold per rule kept in the settings table):
- due_soon: a return the seller can still decide (domain.can_decide) is due within N hours (6);
- overdue: such a return passed its deadline (domain's Overdue), within the last N hours (24);
- spike: a reason or SKU of one shop spikes (store.analytics.spikes) with at least N returns in 7 days (5);
- authorization: a shop's authorization runs out within N days (7), or TikTok revoked it (Invalid);
- sync_failing: a shop's sync failed N times in a row (3).

`evaluate` raises what the rules find and sends what is due. Raising is the store's claim
(store.alerts.claim: insert-or-ignore on (rule, shop, subject, occurrence) in one transaction), so
the app's scheduler (jobs.AlertsSchedule) and `python -m returns_core alerts` from cron may run
at the same moment and each alert still goes out once. Deliveries are leased before sending; a
failure is retried with backoff (RETRY_DELAYS), then given up, and both show in `store.alerts.recent`.

Channel URLs carry secrets (an SMTP password, a Slack webhook). They are kept encrypted, shown
only as `redact`ed (scheme and host), and scrubbed from every error text and log record of apprise
and the HTTP library beneath it. Nothing here imports streamlit.

Webhooks: an UPCOMING_AUTHORIZATION_EXPIRATION (type 7) event marks its inbox row "alert wanted";
each evaluation takes those (`take_webhook_alerts`). The receiver may also call
`raise_authorization_expiring(db, shop_id, expires_at)` itself. Either way the alert is keyed by the
shop and the expiry day (or an already alerted day next to it), so TikTok's daily notices and the
rule's own check raise it once.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import apprise

from returns_core import accounts as accounts_core
from returns_core import domain
from returns_core.filters import ReturnFilters, grid_query
from returns_core.store import alerts as store
from returns_core.store import analytics, settings
from returns_core.store.db import Database, utcnow

logger = logging.getLogger(__name__)

DUE_SOON, OVERDUE, SPIKE, AUTHORIZATION, SYNC_FAILING = "due_soon", "overdue", "spike", "authorization", "sync_failing"
EXPIRING, REVOKED = "expiring", "revoked"  # the two subjects of the authorization rule
EXPIRATION_TOPIC = "UPCOMING_AUTHORIZATION_EXPIRATION"  # the webhook (type 7) that asks for an alert

DEFAULT_BASE_URL = "http://localhost:8501"
BASE_URL_SETTING = "app_base_url"
SPIKES_CHECKED_SETTING = "alerts_spikes_checked_at"
# spikes are counted over whole days and cost a scan of the baseline weeks: once an hour is plenty
SPIKE_EVERY = timedelta(hours=1)

# after the n-th failed attempt, wait RETRY_DELAYS[n-1]; after the last, give up
RETRY_DELAYS: tuple[timedelta, ...] = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15),
                                       timedelta(hours=1), timedelta(hours=4))
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# longer than any one send may take (apprise's own timeouts are seconds), so a live sender keeps it
LEASE = timedelta(minutes=5)
MAX_NAME_LENGTH = 80
MIN_SECRET_LENGTH = 3  # shorter URL parts are not worth hiding (and would mangle every word)


class AlertError(ValueError):
    """A setting or channel refused, with a one-line message for the user (never a channel URL)."""


# --- the rules --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One alert rule as the Settings page shows it: what it watches and its threshold's default and range."""

    name: str
    label: str
    explain: str  # "{n}" stands for the threshold
    default: int
    unit: str
    low: int
    high: int

    def describe(self, n: int | None = None) -> str:
        """What the rule watches, in words, with this threshold (default: its own)."""
        return self.explain.format(n=self.default if n is None else n)


RULES: dict[str, Rule] = {rule.name: rule for rule in (
    Rule(DUE_SOON, "Deadline close, nobody decided",
         "A return the seller can still approve or reject is due within {n} hours.", 6, "hours", 1, 168),
    Rule(OVERDUE, "Overdue",
         "A return the seller can still decide passed its deadline within the last {n} hours: TikTok may "
         "decide by itself.", 24, "hours", 1, 720),
    Rule(SPIKE, "Reason or SKU spike",
         "A reason or SKU of one shop runs well above its usual weeks, with at least {n} returns in 7 days "
         "(the spike test of Reason Analytics).", 5, "returns", 2, 1000),
    Rule(AUTHORIZATION, "Authorization expiring or revoked",
         "A shop's authorization runs out within {n} days, or TikTok revoked it (status Invalid).", 7, "days", 1,
         90),
    Rule(SYNC_FAILING, "Sync failing",
         "A shop's sync failed {n} times in a row.", 3, "failures in a row", 1, 100),
)}


@dataclass(frozen=True)
class RuleSetting:
    """A rule's switch and threshold as chosen on the Settings page."""

    on: bool
    threshold: int


def _rule_key(name: str) -> str:
    return f"alert_rule_{name}"


def rule_settings(db: Database) -> dict[str, RuleSetting]:
    """Every rule's setting: what was saved, else on with the default threshold."""
    chosen: dict[str, RuleSetting] = {}
    for name, rule in RULES.items():
        try:
            saved = json.loads(settings.get_setting(db, _rule_key(name)) or "{}")
            threshold = int(saved.get("threshold", rule.default))
            on = bool(saved.get("on", True))
        except (ValueError, TypeError, AttributeError):  # a hand-edited value: fall back to the default
            threshold, on = rule.default, True
        chosen[name] = RuleSetting(on, min(max(threshold, rule.low), rule.high))
    return chosen


def set_rule(db: Database, name: str, *, on: bool, threshold: int | None = None) -> RuleSetting:
    """Switch a rule on or off and set its threshold (checked against the rule's range)."""
    rule = RULES.get(name)
    if rule is None:
        raise AlertError(f"Unknown alert rule {name!r}; choose one of {', '.join(RULES)}.")
    value = rule.default if threshold is None else int(threshold)
    if not rule.low <= value <= rule.high:
        raise AlertError(f"{rule.label}: the threshold must be between {rule.low} and {rule.high} {rule.unit}.")
    settings.set_setting(db, _rule_key(name), json.dumps({"on": bool(on), "threshold": value}))
    return RuleSetting(bool(on), value)


def base_url(db: Database) -> str:
    """The app's public address, the start of every link in an alert (no trailing slash)."""
    return (settings.get_setting(db, BASE_URL_SETTING) or DEFAULT_BASE_URL).rstrip("/")


def set_base_url(db: Database, url: str) -> str:
    """Set the app's public address (http or https, host, optional path); returns it as kept."""
    text = url.strip().rstrip("/")
    try:
        parts = urlsplit(text)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
            or parts.fragment:
        raise AlertError("The app's address must look like https://returns.example.com (http or https, "
                         "no query).")
    settings.set_setting(db, BASE_URL_SETTING, text)
    return text


# --- links into the app --------------------------------------------------------------------------


def detail_link(base: str, shop_id: str, return_id: str) -> str:
    """The return's detail page."""
    return f"{base}/detail?{urlencode({'id': return_id, 'shop': shop_id})}"


def grid_link(base: str, filters: ReturnFilters, account: accounts_core.Account | None) -> str | None:
    """The grid on exactly these rows (filters.grid_query), in the shop's Account View; None when no URL can."""
    query = grid_query(filters)
    if query is None or (filters.shop_ids and account is None):
        return None
    if account is not None:
        query = {**query, "account": account.label}
    return f"{base}/returns?{urlencode(query, doseq=True)}"


def page_link(base: str, path: str, account: accounts_core.Account | None) -> str:
    """A page of the app (accounts, sync-history), in the shop's Account View when the shop is known."""
    return f"{base}/{path}" + (f"?{urlencode({'account': account.label})}" if account else "")


# --- secrets: redacting and scrubbing ---------------------------------------------------------


def _looks_like_host(host: str) -> bool:
    """True for an IP address, localhost or a dotted DNS name; False for a token in the host's place."""
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    return bool(re.fullmatch(r"([a-z0-9-]+\.)+[a-z]{2,}", host))


def redact(url: str) -> str:
    """The channel as it may be shown: scheme and host only (`slack://…` where the host is a token)."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
    except ValueError:
        return "(unreadable address)"
    scheme = (parts.scheme or "?").lower()
    return f"{scheme}://{host}" if _looks_like_host(host) else f"{scheme}://…"


def secret_parts(url: str) -> set[str]:
    """Every piece of a channel URL that may be a secret: user, password, path, query values, token hosts."""
    text = url.strip()
    found = {text}
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        pieces = [parts.username, parts.password, parts.fragment, parts.netloc.rpartition("@")[0],
                  *parts.path.split("/"), *(value for _, value in parse_qsl(parts.query))]
    except ValueError:
        return found
    if host and not _looks_like_host(host):
        pieces.append(host)  # Slack, Discord, Teams... put a token where a host would be
    for piece in pieces:
        if piece:
            found |= {piece, unquote(piece)}
    return {piece for piece in found if len(piece) >= MIN_SECRET_LENGTH}


class _Scrubber(logging.Filter):
    """Takes the channels' secrets out of text: error messages, and log records of apprise and urllib3."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: set[str] = set()
        self._lock = threading.Lock()

    def remember(self, url: str) -> set[str]:
        """Hide this URL's secrets from now on in this process; returns them."""
        parts = secret_parts(url)
        with self._lock:
            self._parts |= parts
        return parts

    def scrub(self, text: str, parts: Iterable[str] | None = None) -> str:
        """The text with every known secret (or those given) replaced by ***."""
        with self._lock:
            hidden = sorted(self._parts if parts is None else set(parts), key=len, reverse=True)
        for part in hidden:
            text = text.replace(part, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite a log record that carries a secret (its traceback too); never drop a record."""
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + "".join(traceback.format_exception(*record.exc_info))
        clean = self.scrub(message)
        if clean != message:
            record.msg, record.args, record.exc_info, record.exc_text = clean, (), None, None
        return True


_SCRUBBER = _Scrubber()
for _name in ("apprise", "urllib3.connectionpool", "urllib3.util.retry", "requests"):
    logging.getLogger(_name).addFilter(_SCRUBBER)
# apprise logs the URLs it posts to at DEBUG and its failures at WARNING: they reach us through
# the capture in `send`, as one scrubbed line, and never an app log or the CLI's stderr
logging.getLogger("apprise").propagate = False
_SEND_LOCK = threading.Lock()  # one send at a time per process, so each capture holds its own send's log


def scrub(text: str) -> str:
    """The text with every channel secret this process has seen replaced by ***."""
    return _SCRUBBER.scrub(text)


class _Capture(logging.Handler):
    """Collects apprise's warnings and errors during one send."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def send(url: str, title: str, body: str) -> str | None:
    """Send one notification through apprise; None when the channel took it, else why not (scrubbed)."""
    _SCRUBBER.remember(url)
    notifier = apprise.Apprise()
    apprise_logger = logging.getLogger("apprise")
    capture = _Capture()
    with _SEND_LOCK:
        apprise_logger.addHandler(capture)
        level = apprise_logger.level
        if apprise_logger.getEffectiveLevel() > logging.WARNING:
            apprise_logger.setLevel(logging.WARNING)
        try:
            if not notifier.add(url):
                return "apprise does not understand this channel's address; remove it and add it again"
            ok = bool(notifier.notify(body=body, title=title, body_format=apprise.NotifyFormat.TEXT))
        except Exception as exc:  # noqa: BLE001 - a plugin's failure is this channel's failure, in words
            ok = False
            capture.lines.append(f"{exc.__class__.__name__}: {exc}")
        finally:
            apprise_logger.removeHandler(capture)
            apprise_logger.setLevel(level)
    if ok:
        return None
    reason = " ".join(" ".join(capture.lines[-2:]).split()) or "the channel did not accept the alert"
    return _SCRUBBER.scrub(reason)[:store.MAX_ERROR_LENGTH]


# --- channels ---------------------------------------------------------------------------------------


def add_channel(db: Database, url: str, name: str = "") -> store.Channel:
    """Check an apprise URL and keep it (encrypted); the channel shows only its redacted form from now on."""
    text = url.strip()
    if not text:
        raise AlertError("Give the channel's apprise address, e.g. mailtos://user:password@smtp.example.com.")
    _SCRUBBER.remember(text)  # before apprise sees it: it logs what it cannot read
    plugin = apprise.Apprise.instantiate(text, suppress_exceptions=True)
    if plugin is None:
        raise AlertError(f"apprise does not understand this address ({redact(text)}); see the apprise URL "
                         "formats (mailto://, mailtos://, slack://, msteams://, json://, ...).")
    label = " ".join(name.split())[:MAX_NAME_LENGTH] or str(getattr(plugin, "service_name", "") or "Channel")
    channel_id = store.add_channel(db, label, redact(text), text)
    return next(c for c in store.list_channels(db) if c.id == channel_id)


def remove_channel(db: Database, channel_id: int) -> None:
    """Remove a channel; alerts still waiting to go to it are dropped, sent ones stay listed."""
    if not store.remove_channel(db, channel_id):
        raise AlertError("That channel is already gone.")


def test_channel(db: Database, channel_id: int) -> str | None:
    """Send a test message to one channel now: None when it arrived, else why not (scrubbed)."""
    url = store.channel_url(db, channel_id)
    if url is None:
        raise AlertError("That channel is already gone.")
    return send(url, "Returns Desk: test alert",
                f"This channel receives Returns Desk alerts.\nOpen the app: {base_url(db)}")


def channels(db: Database) -> list[store.Channel]:
    """The configured channels (name, redacted form), oldest first."""
    return store.list_channels(db)


# --- what each rule finds ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What every rule needs for one evaluation."""

    db: Database
    now: datetime
    base: str
    accounts: dict[str, accounts_core.Account]

    def name(self, shop_id: str) -> str:
        """The shop's account name (its id when no account has it)."""
        account = self.accounts.get(shop_id)
        return account.name if account else shop_id


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _span(delta: timedelta) -> str:
    """A duration in words: '5 h 12 min', '40 min'."""
    minutes = max(0, int(delta.total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def _return_summary(row: dict) -> str:
    money = f"{row['refund_total']:.2f} {row['refund_currency']}" if row["refund_total"] is not None else None
    return " · ".join(str(p) for p in (row["type"], row["reason_text"], money) if p)


def _deadline_alerts(ctx: Context, rows: list[dict], rule: str) -> list[store.NewAlert]:
    """One alert per return and deadline: a new deadline of the same return alerts again."""
    found = []
    for row in rows:
        due, shop, rid = row["due_by"], row["shop_id"], row["return_id"]
        link = detail_link(ctx.base, shop, rid)
        noun = domain.noun(row.get("kind"))  # a buyer's cancellation is named as one
        if rule == DUE_SOON:
            title = f"{noun.capitalize()} {rid} ({row['account']}) is due in {_span(due - ctx.now)}"
            state = f"Deadline for the seller: {_when(due)}, in {_span(due - ctx.now)}. Nobody has decided yet: " \
                    "approve or reject it before TikTok decides by itself."
        else:
            title = f"{noun.capitalize()} {rid} ({row['account']}) is overdue"
            state = f"The seller's deadline passed {_span(ctx.now - due)} ago ({_when(due)}) and nobody decided: " \
                    "TikTok may decide by itself. Sync to see what happened, or decide now."
        message = f"{row['account']}: {noun} {rid}\n{_return_summary(row)}\n{state}\nOpen the {noun}: {link}"
        found.append(store.NewAlert(rule, shop, rid, due.isoformat(timespec="seconds"), title, message, link))
    return found


def check_due_soon(ctx: Context, hours: int) -> tuple[list[store.NewAlert], None]:
    """Returns the seller can still decide, due within `hours`."""
    return _deadline_alerts(ctx, store.due_within(ctx.db, ctx.now, hours), DUE_SOON), None


def check_overdue(ctx: Context, hours: int) -> tuple[list[store.NewAlert], None]:
    """Returns the seller can still decide whose deadline passed within the last `hours`."""
    return _deadline_alerts(ctx, store.overdue_since(ctx.db, ctx.now, hours), OVERDUE), None


def check_spikes(ctx: Context, min_count: int) -> tuple[list[store.NewAlert], set[tuple[str, str]] | None]:
    """New reason and SKU spikes per shop (analytics.spikes), each linked to the grid on its counted returns."""
    checked = settings.get_setting(ctx.db, SPIKES_CHECKED_SETTING)
    try:
        if checked and timedelta(0) <= ctx.now - datetime.fromisoformat(checked) < SPIKE_EVERY:
            return [], None  # counted not long ago: same days, same answer
    except ValueError:
        pass  # a hand-edited value: count now
    report = analytics.spikes(ctx.db, ReturnFilters(), analytics.SpikeRule(min_count=min_count),
                              today=ctx.now.date())
    settings.set_setting(ctx.db, SPIKES_CHECKED_SETTING, ctx.now.isoformat())
    found, still_on = [], set()
    for row in report.spikes.to_dict("records"):
        if row["Level"] not in ("Reason", "SKU"):
            continue  # a SKU × reason spike shows as its SKU's or its reason's too: one alert is enough
        alert = _spike_alert(ctx, report, row)
        still_on.add((alert.shop_id, alert.subject))
        found.append(alert)
    return found, still_on


def _spike_alert(ctx: Context, report: analytics.SpikeReport, row: dict) -> store.NewAlert:
    """One spike's alert: the counts, and the grid on exactly the returns counted."""
    shop = row["Account"]
    sku = row["SKU"] if row["Level"] == "SKU" else None
    reason = row["Reason"] if row["Level"] == "Reason" else None
    subject = f"{row['Level']}: {sku or reason}"
    account = ctx.accounts.get(shop)
    exact = reason != analytics.NO_REASON  # returns without a reason have no grid filter of their own
    filters = report.window_filters(ReturnFilters(), shop, sku=sku, reason=reason if exact else None)
    link = (grid_link(ctx.base, filters, account) if exact else None) or page_link(ctx.base, "reasons", account)
    usual = "none in the weeks before" if not row["Baseline"] else f"{row['Ratio']:.1f}× the usual week"
    title = f"Spike in {ctx.name(shop)}: {subject}, {row['Recent']} returns in 7 days ({usual})"
    message = (f"{ctx.name(shop)}: {subject}\n{row['Recent']} returns created from {report.window_start} to "
               f"{report.as_of}; {usual}.\nSee them: {link}")
    return store.NewAlert(SPIKE, shop, subject, report.as_of.isoformat(), title, message, link, ongoing=True)


def _expiry_day(db: Database, shop_id: str, day: date) -> str:
    """The occurrence of an expiry: its day, or the day of an expiry already alerted a day either side.

    Two reports of one authorization's end (the app's check and TikTok's daily notice) can differ by
    minutes and fall either side of midnight; they are still one expiry. A reconnect moves the end by
    months, so a day's slack never merges two authorizations.
    """
    near = {(day + timedelta(days=d)).isoformat() for d in (-1, 0, 1)}
    return next((o for o in store.occurrences(db, AUTHORIZATION, shop_id, EXPIRING) if o in near), day.isoformat())


def _expiring_alert(ctx: Context, shop_id: str, expires_at: datetime | None) -> store.NewAlert:
    """A shop's authorization runs out: once per shop and expiry day (the app's check and TikTok's event agree)."""
    account = ctx.accounts.get(shop_id)
    link = page_link(ctx.base, "accounts", account)
    day = _expiry_day(ctx.db, shop_id, (expires_at or ctx.now).date())
    when = f"on {_when(expires_at)}, in {_span(expires_at - ctx.now)}" if expires_at else "soon"
    title = f"Authorization of {ctx.name(shop_id)} runs out {when.split(',')[0]}"
    message = (f"{ctx.name(shop_id)} (shop {shop_id}): TikTok's authorization runs out {when}. After that the "
               f"desk can no longer sync this shop or act on its returns.\nReconnect it: {link}")
    return store.NewAlert(AUTHORIZATION, shop_id, EXPIRING, day, title, message, link)


def check_authorization(ctx: Context, days: int) -> tuple[list[store.NewAlert], set[tuple[str, str]]]:
    """Authorizations running out within `days`, and those TikTok revoked (raised again after a reconnect)."""
    found = [_expiring_alert(ctx, row["shop_id"], row["expires_at"])
             for row in store.expiring_authorizations(ctx.db, ctx.now, ctx.now + timedelta(days=days))]
    still_on = set()
    for row in store.revoked_authorizations(ctx.db):
        shop = row["shop_id"]
        link = page_link(ctx.base, "accounts", ctx.accounts.get(shop))
        reason = row["auth_error"] or "TikTok refused the shop's authorization"
        found.append(store.NewAlert(
            AUTHORIZATION, shop, REVOKED, ctx.now.isoformat(timespec="seconds"),
            f"Authorization of {row['name']} was revoked",
            f"{row['name']} (shop {shop}) is Invalid: {reason}. Nothing syncs until it is reconnected.\n"
            f"Reconnect it: {link}", link, ongoing=True))
        still_on.add((shop, REVOKED))
    return found, still_on


def check_sync_failing(ctx: Context, times: int) -> tuple[list[store.NewAlert], None]:
    """Shops whose sync failed `times` times in a row: once per run of failures (until a sync succeeds)."""
    found = []
    for row in store.failing_syncs(ctx.db, times):
        shop = row["shop_id"]
        link = page_link(ctx.base, "sync-history", ctx.accounts.get(shop))
        found.append(store.NewAlert(
            SYNC_FAILING, shop, "sync", str(row["first_run_id"]),
            f"Sync of {row['name']} failed {row['failures']} times in a row",
            f"{row['name']} (shop {shop}): the last {row['failures']} syncs failed, the latest at "
            f"{_when(row['last_at'])}: {row['last_error'] or 'no reason recorded'}\nSee the runs: {link}", link))
    return found, None


Check = Callable[[Context, int], tuple[list[store.NewAlert], set[tuple[str, str]] | None]]
CHECKS: dict[str, Check] = {DUE_SOON: check_due_soon, OVERDUE: check_overdue, SPIKE: check_spikes,
                            AUTHORIZATION: check_authorization, SYNC_FAILING: check_sync_failing}
assert set(CHECKS) == set(RULES)


# --- evaluating and sending ----------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation did: alerts raised, deliveries sent, to retry, given up, and why they failed."""

    raised: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0  # given up after MAX_ATTEMPTS
    errors: tuple[str, ...] = ()  # "channel: reason", scrubbed of secrets
    channels: int = 0

    def summary(self) -> str:
        """One line for the CLI and the Settings page."""
        if not self.channels:
            return "No alert channel is set up: nothing to send (add one on the Settings page)."
        text = f"Alerts: {self.raised} raised, {self.sent} sent"
        if self.retrying:
            text += f", {self.retrying} to retry"
        if self.failed:
            text += f", {self.failed} given up"
        return text + "."


def _context(db: Database, now: datetime) -> Context:
    return Context(db, now, base_url(db), {a.shop_id: a for a in accounts_core.list_accounts(db)})


def raise_alerts(db: Database, *, now: datetime | None = None, raised_by: str = "app") -> int:
    """Run every rule that is on, and take the alerts webhooks asked for; raise what nobody raised yet.

    Returns how many were raised. Nothing is raised while no channel is set up: the first channel
    added then hears of what holds at that time.
    """
    now = now or utcnow()
    if not store.has_channels(db):
        return 0
    ctx, chosen, raised = _context(db, now), rule_settings(db), 0
    for name, check in CHECKS.items():
        if not chosen[name].on:
            continue
        found, still_on = check(ctx, chosen[name].threshold)
        if still_on is not None:
            store.clear_ended(db, name, still_on, now)  # an ended condition may alert again when it returns
        raised += len(store.claim(db, [_marked(ctx, alert) for alert in found], raised_by=raised_by, now=now))
    return raised + take_webhook_alerts(db, now=now)


def _marked(ctx: Context, alert: store.NewAlert) -> store.NewAlert:
    """The alert, its title marked when it is about the demo shop's simulated data."""
    account = ctx.accounts.get(alert.shop_id)
    return replace(alert, title=f"[Sandbox] {alert.title}") if account and account.is_sandbox else alert


def take_webhook_alerts(db: Database, *, now: datetime | None = None) -> int:
    """Raise the alerts TikTok's webhooks asked for (returns_core.webhooks.wanted_alerts), then mark them taken.

    Taken after raising: a crash in between leaves them wanted, and raising them again is a no-op.
    """
    from returns_core import webhooks  # the receiver's side: only needed when an event asked for an alert

    wanted = [w for w in webhooks.wanted_alerts(db) if w.topic == EXPIRATION_TOPIC]
    raised = sum(raise_authorization_expiring(db, w.shop_id, w.expires_at, now=now) is not None for w in wanted)
    if wanted:
        webhooks.take_alerts(db, [w.notification_id for w in wanted])
    return raised


def _retry_at(now: datetime, attempts: int) -> datetime | None:
    """When to try again after `attempts` failed attempts; None once they are used up."""
    return now + RETRY_DELAYS[attempts - 1] if attempts < MAX_ATTEMPTS else None


def deliver_due(db: Database, *, now: datetime | None = None, limit: int = 100) -> Evaluation:
    """Send every delivery due now (new ones, retries, and those whose sender died), recording each outcome."""
    now = now or utcnow()
    sent = retrying = failed = 0
    errors: list[str] = []
    for delivery in store.take_due(db, now=now, lease=LEASE, limit=limit):
        error = "the channel was removed" if delivery.url is None else \
            send(delivery.url, delivery.title, delivery.message)
        if error is None:
            store.record_sent(db, delivery.alert_id, delivery.channel_id, now)
            sent += 1
            continue
        retry_at = _retry_at(now, delivery.attempts) if delivery.url is not None else None
        store.record_failed(db, delivery.alert_id, delivery.channel_id, error, retry_at)
        retrying, failed = retrying + bool(retry_at), failed + (not retry_at)
        errors.append(f"{delivery.channel}: {error}")
        logger.warning("alert %s to %s failed (attempt %s): %s", delivery.alert_id, delivery.channel,
                       delivery.attempts, error)
    return Evaluation(0, sent, retrying, failed, tuple(errors), len(store.list_channels(db)))


def evaluate(db: Database, *, now: datetime | None = None, raised_by: str = "app") -> Evaluation:
    """One evaluation: raise what the rules find, then send everything due. Safe to run anywhere at once."""
    now = now or utcnow()
    if not store.has_channels(db):
        return Evaluation()  # nowhere to send: nothing raised, nothing waiting (removal drops what waited)
    raised = raise_alerts(db, now=now, raised_by=raised_by)
    delivered = deliver_due(db, now=now)
    return Evaluation(raised, delivered.sent, delivered.retrying, delivered.failed, delivered.errors,
                      delivered.channels)


def _expiry(value: datetime | date | int | float | str | None) -> datetime | None:
    """TikTok's expiration_time (Unix seconds, as a number or a string), or a datetime, as naive UTC."""
    if value is None or isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value and value.tzinfo else value
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time())
    try:
        return datetime.fromtimestamp(float(value), UTC).replace(tzinfo=None)
    except (TypeError, ValueError, OverflowError, OSError):
        pass
    try:
        return _expiry(datetime.fromisoformat(str(value).strip()))
    except ValueError:
        return None


def raise_authorization_expiring(db: Database, shop_id: str, expires_at: datetime | date | int | float | str | None,
                                 *, raised_by: str = "webhook", now: datetime | None = None) -> int | None:
    """Raise "authorization expiring" for a shop because TikTok said so (UPCOMING_AUTHORIZATION_EXPIRATION).

    For the webhook receiver. `expires_at` is the event's `data.expiration_time` as received (Unix
    seconds, as a number or a string) or a datetime; when it cannot be read, the account's own expiry is
    used. Returns the new alert's id, or None when the alert was raised before (by this call, or by the
    rule's own check of the same expiry day), the authorization rule is off, or no channel is set up.
    The alert goes out with the next evaluation (the app's scheduler, within a minute, or cron); call
    `deliver_due(db)` to send it at once. Safe to call for every repeated delivery of the event.
    """
    now = now or utcnow()
    if not rule_settings(db)[AUTHORIZATION].on or not store.has_channels(db):
        return None
    ctx = _context(db, now)
    when = _expiry(expires_at)
    if when is None and shop_id in ctx.accounts:
        account = ctx.accounts[shop_id]
        when = account.refresh_token_expires_at if account.has_refresh_token else account.access_token_expires_at
    raised = store.claim(db, [_expiring_alert(ctx, shop_id, when)], raised_by=raised_by, now=now)
    return raised[0] if raised else None

