"""The command line (DESIGN.md, "Command line": a contract that tests and users rely on).

Expected failures (bad credentials, a busy database, network down, bad arguments, unknown
account, a file that cannot be written) print ONE line "error: ..." on stderr, worded by
returns_core.explain, and exit 1, or 2 for bad arguments; never a traceback.
Set RETURNS_DEBUG=1 to see tracebacks of unexpected errors.

Only `accounts add` creates a store (and says so); every other command refuses a store that is
not there, so a mistyped --db is an error rather than a new, empty store.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

from returns_core import config, domain
from returns_core.explain import FailureKind, explain, explain_connect
from returns_core.secretbox import key_file_for
from returns_core.store.db import UPGRADE_TIME, Database, keep_files_private

ENV_APP_SECRET = "RETURNS_APP_SECRET"
ENV_ACCESS_TOKEN = "RETURNS_ACCESS_TOKEN"
ENV_REFRESH_TOKEN = "RETURNS_REFRESH_TOKEN"
ENV_DEBUG = "RETURNS_DEBUG"

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A failure to report as one line; `code` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_FAILED):
        super().__init__(message)
        self.code = code


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or exc.__class__.__name__


# --- argument types -----------------------------------------------------------------------------


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; use YYYY-MM-DD") from None


def _choice(value: str, choices: Sequence[str], aliases: dict[str, str], label: str) -> str:
    wanted = value.strip().lower()
    for choice in choices:
        if choice.lower() == wanted:
            return choice
    if value.strip().upper() in aliases:
        return aliases[value.strip().upper()]
    raise CliError(f"Unknown {label} {value!r}; choose one of: {', '.join(choices)}", EXIT_USAGE)


# --- parser -------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line too (exit status 2)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USAGE, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of `python -m returns_core`."""
    # --db is accepted before the command (the contract) and after it (convenience)
    db_opt = _Parser(add_help=False)
    db_opt.add_argument("--db", default=argparse.SUPPRESS,
                        help="DuckDB file (default: $RETURNS_DB, else data/returns.duckdb)")

    parser = _Parser(
        prog="python -m returns_core",
        description="Returns Desk for TikTok Shop: accounts, sync, export and the sandbox.",
        epilog=f"Secrets can come from the environment instead of flags, so they stay out of shell history: "
               f"{ENV_APP_SECRET}, {ENV_ACCESS_TOKEN}, {ENV_REFRESH_TOKEN}. Set {ENV_DEBUG}=1 for tracebacks.")
    parser.add_argument("--db", default=None, help="DuckDB file (default: $RETURNS_DB, else data/returns.duckdb)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    accounts = commands.add_parser("accounts", help="connect, list, enable and disable TikTok Shop accounts")
    acc_cmds = accounts.add_subparsers(dest="accounts_command", metavar="ACTION", required=True)
    add = acc_cmds.add_parser(
        "add", parents=[db_opt], help="connect a shop (tokens or an authorization code)",
        description="Connect every shop the credentials authorize (one account per shop; several shops are "
                    "named 'NAME - <shop name>'). Adding the same NAME again reconnects it with new tokens.",
        epilog=f"Instead of --app-secret, --access-token and --refresh-token you may set {ENV_APP_SECRET}, "
               f"{ENV_ACCESS_TOKEN} and {ENV_REFRESH_TOKEN} so secrets do not sit in shell history.")
    add.add_argument("name", metavar="NAME", help="the account's name in Returns Desk")
    add.add_argument("--app-key", required=True, help="the app key from TikTok Shop Partner Center")
    add.add_argument("--app-secret", default=None, help=f"the app secret (or ${ENV_APP_SECRET})")
    creds = add.add_mutually_exclusive_group()
    creds.add_argument("--access-token", default=None, help=f"a seller access token (or ${ENV_ACCESS_TOKEN})")
    creds.add_argument("--auth-code", default=None, help="an authorization code from the seller's redirect")
    add.add_argument("--refresh-token", default=None, help=f"the refresh token (or ${ENV_REFRESH_TOKEN})")
    add.add_argument("--shop-cipher", default=None, help="connect only the shop with this cipher")
    add.add_argument("--api-base", default=config.DEFAULT_API_BASE, help="API host (default: %(default)s)")
    add.add_argument("--auth-base", default=None,
                     help=f"token host (default: {config.DEFAULT_AUTH_BASE}; with a custom --api-base, the same)")
    add.set_defaults(func=cmd_accounts_add)
    lst = acc_cmds.add_parser("list", parents=[db_opt], help="list accounts with status and last sync (no secrets)")
    lst.set_defaults(func=cmd_accounts_list)
    for action, enabled in (("disable", False), ("enable", True)):
        sub = acc_cmds.add_parser(action, parents=[db_opt], help=f"{action} an account (disabled ones never sync)")
        sub.add_argument("name", metavar="NAME", help="account name or shop id")
        sub.set_defaults(func=cmd_accounts_enable, enabled=enabled)

    sync = commands.add_parser("sync", parents=[db_opt], help="sync returns from TikTok into the store",
                               description="Sync every enabled account (or those named) incrementally.")
    sync.add_argument("--account", action="append", default=[], metavar="NAME",
                      help="sync only this account (repeatable)")
    sync.add_argument("--full", action="store_true", help="re-read every return (still never deletes)")
    sync.add_argument("--concurrency", type=int, default=None, metavar="N",
                      help="shops synced at once, 1-64 (default: the store's setting, else 8); "
                           "--save-concurrency keeps it")
    sync.add_argument("--save-concurrency", action="store_true",
                      help="keep --concurrency as the setting the app and later syncs use")
    sync.set_defaults(func=cmd_sync)

    export = commands.add_parser("export", parents=[db_opt], help="export the (filtered) returns grid",
                                 description="Export exactly the filtered returns, with the grid's columns.")
    export.add_argument("--out", required=True, metavar="FILE", help="FILE.csv, FILE.xlsx or FILE.parquet")
    export.add_argument("--account", action="append", default=[], metavar="NAME", help="account (repeatable)")
    export.add_argument("--type", action="append", default=[], metavar="TYPE",
                        help=f"type (repeatable): {', '.join(domain.ALL_TYPES)}")
    export.add_argument("--status", action="append", default=[], metavar="STATUS",
                        help=f"status (repeatable): {', '.join(domain.STATUSES)}")
    export.add_argument("--marketplace-status", action="append", default=[], metavar="S",
                        help="TikTok's return_status, verbatim (repeatable)")
    export.add_argument("--reason", action="append", default=[], metavar="TEXT", help="reason text (repeatable)")
    export.add_argument("--created-from", type=_day, default=None, metavar="YYYY-MM-DD")
    export.add_argument("--created-to", type=_day, default=None, metavar="YYYY-MM-DD")
    export.add_argument("--due-soon", action="store_true", help="only returns due within 24 h")
    export.add_argument("--search", default="", help="return ID, order ID, SKU or tracking number")
    export.set_defaults(func=cmd_export)

    alerts = commands.add_parser(
        "alerts", parents=[db_opt], help="evaluate the alert rules and send what is due (for cron)",
        description="Raise the alerts the rules find (each once per subject and rule, also while the app runs "
                    "at the same time) and send them, with any retries that are due, to the channels set up "
                    "on the Settings page.")
    alerts.set_defaults(func=cmd_alerts)

    backup = commands.add_parser("backup", parents=[db_opt], help="write a restorable copy of the whole store")
    backup.add_argument("--out", required=True, metavar="DIR", help="a new (or empty) folder")
    backup.set_defaults(func=cmd_backup)

    hooks = commands.add_parser("webhooks", help="TikTok's webhook events: process those waiting, list the latest")
    hook_cmds = hooks.add_subparsers(dest="webhooks_command", metavar="ACTION", required=True)
    process = hook_cmds.add_parser(
        "process", parents=[db_opt], help="process the events waiting in the inbox (for cron)",
        description="Process the webhook events the app received but did not process yet (it was stopped, or an "
                    "attempt failed and its retry is due): re-sync the returns they name, mark deauthorized "
                    "accounts Invalid, raise authorization alerts. The app does this by itself while it runs.")
    process.set_defaults(func=cmd_webhooks_process)
    listing = hook_cmds.add_parser("list", parents=[db_opt], help="the latest events and their outcome")
    listing.add_argument("--limit", type=int, default=20, help="how many (default %(default)s)")
    listing.set_defaults(func=cmd_webhooks_list)

    sandbox = commands.add_parser("sandbox", help="the TikTok Shop simulator")
    sb_cmds = sandbox.add_subparsers(dest="sandbox_command", metavar="ACTION", required=True)
    serve = sb_cmds.add_parser("serve", help="serve the sandbox over HTTP on 127.0.0.1 until Ctrl-C")
    serve.add_argument("--port", type=int, default=8600, help="port (0 = any free port; default %(default)s)")
    serve.add_argument("--seed", type=int, default=7, help="random seed (default %(default)s)")
    serve.add_argument("--returns", type=int, default=500, help="returns per shop (default %(default)s)")
    serve.add_argument("--cancellations", type=int, default=0,
                       help="buyers' cancellations per shop over the same history (default %(default)s)")
    serve.add_argument("--shops", type=int, default=2, help="number of shops (default %(default)s)")
    serve.add_argument("--apps", type=int, default=1,
                       help="TikTok developer apps sharing the shops, each with its own keys and rate limit "
                            "(default %(default)s: the demo app)")
    serve.add_argument("--state", default=None, metavar="FILE", help="keep the sandbox state in this JSON file")
    from returns_core.tiktok.sandbox import server as sandbox_server  # its live flags: clock and webhooks

    sandbox_server.add_live_arguments(serve)
    serve.set_defaults(func=cmd_sandbox_serve)
    return parser


def _store_path(args: argparse.Namespace, *, create: bool = False) -> Path:
    """The store the command works on: it must exist unless the command creates one (`create`)."""
    if args.db is not None and not args.db.strip():
        raise CliError("--db is empty: give the store's file, or leave --db out to use $RETURNS_DB or "
                       "data/returns.duckdb", EXIT_USAGE)
    path = config.db_path(args.db)
    if path.is_dir():
        raise CliError(f"{path} is a folder, not a store file: check --db (or $RETURNS_DB)", EXIT_USAGE)
    if not create and not path.exists():
        raise CliError(f"There is no store at {path}: check --db (or $RETURNS_DB); `accounts add` creates "
                       "a new one", EXIT_USAGE)
    return path


def _db(args: argparse.Namespace, *, create: bool = False) -> Database:
    db = Database(_store_path(args, create=create))
    if db.upgrade_pending():
        _err(f"Upgrading {db.path.name} to this version's schema ({UPGRADE_TIME}) ...")
        db.migrate()
        _err("Upgrade done.")
    return db


# --- commands -----------------------------------------------------------------------------------


def cmd_accounts_add(args: argparse.Namespace) -> int:
    """accounts add NAME ..."""
    from returns_core import accounts as acc
    from returns_core import connect
    from returns_core.tiktok import errors

    secret = args.app_secret or os.environ.get(ENV_APP_SECRET)
    if not secret:
        raise CliError(f"--app-secret is required (or set {ENV_APP_SECRET})", EXIT_USAGE)
    access = args.access_token or os.environ.get(ENV_ACCESS_TOKEN)
    refresh = args.refresh_token or os.environ.get(ENV_REFRESH_TOKEN)
    if not args.auth_code:
        if not access:
            raise CliError(f"give --auth-code, or --access-token (or {ENV_ACCESS_TOKEN}) with --refresh-token",
                           EXIT_USAGE)
        if not refresh:
            raise CliError(f"--refresh-token is required with an access token (or set {ENV_REFRESH_TOKEN})",
                           EXIT_USAGE)
    auth_base = args.auth_base or (config.DEFAULT_AUTH_BASE if args.api_base == config.DEFAULT_API_BASE
                                   else args.api_base)
    path = _store_path(args, create=True)
    new_store = _NewStore(path) if not path.exists() else None
    db = _db(args, create=True)
    options = dict(shop_cipher=args.shop_cipher, api_base=args.api_base.rstrip("/"),
                   auth_base=auth_base.rstrip("/"))
    try:
        before = {a.shop_id for a in acc.list_accounts(db)}
        if args.auth_code:
            added = connect.add_accounts_with_auth_code(db, args.name, args.app_key, secret, args.auth_code,
                                                        **options)
        else:
            added = connect.add_accounts_with_tokens(db, args.name, args.app_key, secret, access, refresh,
                                                     **options)
    except BaseException as exc:
        if new_store is not None:
            new_store.discard()  # a refused connect leaves nothing behind, not even an empty store
        if isinstance(exc, errors.TikTokError):
            raise CliError(explain_connect(exc).message) from None
        raise
    if new_store is not None:
        print(f"Created a new store at {path}.")
    for account in added:
        verb = "Reconnected" if account.shop_id in before else "Added"
        print(f"{verb} account {account.name!r}: shop {account.shop_name or '?'} ({account.shop_id}, "
              f"{account.region or '?'}), status {account.status}")
    return EXIT_OK


class _NewStore:
    """A store `accounts add` is about to create at `path`, and the folders made for it: removed again
    when the connect is refused."""

    def __init__(self, path: Path):
        self.path = path
        self.folders = [folder for folder in path.parents if not folder.exists()]
        self.files = [path, path.with_name(path.name + ".wal")]
        if not key_file_for(path).exists():
            self.files.append(key_file_for(path))

    def discard(self) -> None:
        for leftover in self.files:
            with contextlib.suppress(OSError):
                leftover.unlink()
        for folder in self.folders:  # innermost first; only if still empty
            with contextlib.suppress(OSError):
                folder.rmdir()


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def _table(headers: Sequence[str], rows: list[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip()
             for row in [headers, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cmd_accounts_list(args: argparse.Namespace) -> int:
    """accounts list"""
    from returns_core import accounts as acc
    from returns_core.store.sync_runs import last_syncs

    db = _db(args)
    accounts = acc.list_accounts(db)
    if not accounts:
        print("No accounts yet; connect one with `accounts add NAME ...`.")
        return EXIT_OK
    runs = last_syncs(db)
    rows = []
    for a in accounts:
        run = runs.get(a.shop_id)
        last = f"{_when(run.at)} ({run.state})" if run else "never"
        rows.append((a.name, a.shop_id, a.shop_name or "-", a.region or "-", a.status,
                     _when(a.access_token_expires_at), _when(a.refresh_token_expires_at), last))
    print(_table(("NAME", "SHOP ID", "SHOP NAME", "REGION", "STATUS", "ACCESS TOKEN EXPIRES",
                  "REFRESH TOKEN EXPIRES", "LAST SYNC"), rows))
    for a in accounts:
        if a.auth_error and a.status == acc.INVALID:
            print(f"{a.name}: {a.auth_error}")
    return EXIT_OK


def cmd_accounts_enable(args: argparse.Namespace) -> int:
    """accounts enable|disable NAME"""
    from returns_core import accounts as acc

    account = acc.set_enabled(_db(args), args.name, args.enabled)
    print(f"{'Enabled' if account.enabled else 'Disabled'} account {account.name!r} ({account.shop_id}).")
    return EXIT_OK


def cmd_sync(args: argparse.Namespace) -> int:
    """sync [--account NAME]... [--full] [--concurrency N [--save-concurrency]]"""
    from returns_core.accounts import Account
    from returns_core.sync import (
        Overall,
        SyncProgress,
        SyncResult,
        accounts_to_sync,
        check_concurrency,
        concurrency_setting,
        set_concurrency,
        sync_accounts,
    )

    if args.save_concurrency and args.concurrency is None:
        raise CliError("--save-concurrency needs --concurrency N", EXIT_USAGE)
    if args.concurrency is not None:
        try:
            check_concurrency(args.concurrency)
        except ValueError as exc:
            raise CliError(f"--concurrency: {exc}", EXIT_USAGE) from None
    db = _db(args)
    if args.save_concurrency:
        set_concurrency(db, args.concurrency)
    concurrency = args.concurrency or concurrency_setting(db)
    chosen = accounts_to_sync(db, args.account)
    if not chosen:
        raise CliError("No enabled accounts to sync; connect one with `accounts add` or enable one.")
    many = len(chosen) > 1

    def progress(p: SyncProgress) -> None:
        if p.done:
            return
        of_total = f" of {p.total_count}" if p.total_count is not None else ""
        counts = f"{p.new} new, {p.updated} updated, {p.unchanged} unchanged"
        if p.cancellations:  # the second search's rows: each kind named
            _err(f"{p.account}: page {p.pages}, {p.fetched}{of_total} read: "
                 f"{domain.count_in_words(p.returns, p.cancellations, str)} ({counts})")
        else:
            _err(f"{p.account}: page {p.pages}, {p.fetched}{of_total} returns read ({counts})")

    def starting(account: Account) -> None:
        _err(f"{account.name}: syncing{' (full)' if args.full else ''}...")

    def finished(result: SyncResult) -> None:
        print(result.summary(), flush=True)

    shown = [-1]

    def overall(o: Overall) -> None:
        # the whole round after each finished shop ("37 of 200 shops, 18,204 returns"), once per shop
        if many and o.done != shown[0]:
            shown[0] = o.done
            _err(o.line())

    results = sync_accounts(db, chosen, full=args.full, concurrency=concurrency, on_progress=progress,
                            on_start=starting, on_result=finished, on_overall=overall, trigger="cli")
    failed = sum(1 for result in results if not result.ok)
    if failed:
        raise CliError(f"{failed} of {len(chosen)} account(s) failed to sync (see above)")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """export --out FILE [filters]"""
    from returns_core import accounts as acc
    from returns_core.filters import ReturnFilters
    from returns_core.store.returns import export_returns

    db = _db(args)
    types = tuple(_choice(t, domain.ALL_TYPES, domain.TYPE_MAP, "type") for t in args.type)
    statuses = tuple(_choice(s, domain.STATUSES, {}, "status") for s in args.status)
    shop_ids = tuple(dict.fromkeys(acc.get_account(db, n).shop_id for n in args.account))
    filters = ReturnFilters(shop_ids=shop_ids, types=types, statuses=statuses,
                            marketplace_statuses=tuple(args.marketplace_status), reasons=tuple(args.reason),
                            created_from=args.created_from, created_to=args.created_to, due_soon=args.due_soon,
                            search=args.search)
    out = Path(args.out)
    n = export_returns(db, filters, out)
    print(f"Exported {n} return(s) to {out}")
    return EXIT_OK


def cmd_alerts(args: argparse.Namespace) -> int:
    """alerts"""
    from returns_core.alerts import evaluate

    result = evaluate(_db(args), raised_by="cli")
    print(result.summary(), flush=True)
    if result.errors:  # already free of the channels' secrets
        later = " (tried again later)" if result.retrying else ""
        raise CliError(f"{len(result.errors)} alert delivery(ies) failed{later}; the last: {result.errors[-1]}")
    return EXIT_OK


def cmd_backup(args: argparse.Namespace) -> int:
    """backup --out DIR"""
    from returns_core.store.backup import backup

    db = _db(args)
    db.checkpoint()
    result = backup(db, args.out)
    total = sum(result.row_counts.values())
    print(f"Backed up {len(result.row_counts)} tables ({total} rows) to {result.path}")
    return EXIT_OK


def cmd_webhooks_process(args: argparse.Namespace) -> int:
    """webhooks process"""
    from returns_core.webhooks import process_all

    report = process_all(_db(args))
    print(report.summary(), flush=True)
    return EXIT_OK


def cmd_webhooks_list(args: argparse.Namespace) -> int:
    """webhooks list [--limit N]"""
    from returns_core.store import webhook_events
    from returns_core.webhooks import type_name

    if args.limit < 1:
        raise CliError("--limit must be 1 or more", EXIT_USAGE)
    db = _db(args)
    summary = webhook_events.summary(db)
    print(f"{summary.total} event(s); {summary.waiting} waiting, {summary.failed} failed; "
          f"last received {_when(summary.last_received_at)}")
    rows = [(_when(r.received_at), type_name(r.event_type),
             r.shop_id or "-", r.return_id or "-", r.state, str(r.deliveries), r.outcome or "")
            for r in webhook_events.recent(db, args.limit).itertuples()]
    if rows:
        print(_table(("RECEIVED", "TYPE", "SHOP ID", "RETURN ID", "STATE", "DELIVERIES", "OUTCOME"), rows))
    return EXIT_OK


def cmd_sandbox_serve(args: argparse.Namespace) -> int:
    """sandbox serve [--port N] [--seed N] [--returns N] [--shops N] [--apps N] [--state FILE] [live flags]"""
    from returns_core.tiktok.sandbox import server
    from returns_core.tiktok.sandbox.auth import MAX_APPS
    from returns_core.tiktok.sandbox.catalogue import MAX_SHOPS
    from returns_core.tiktok.sandbox.core import SandboxStateError
    from returns_core.tiktok.sandbox.world import MAX_RETURNS_PER_SHOP

    if not 0 <= args.port <= 65535:
        raise CliError(f"--port must be 0-65535, not {args.port}", EXIT_USAGE)
    if not 0 <= args.returns <= MAX_RETURNS_PER_SHOP:
        raise CliError(f"--returns must be 0 or more and at most {MAX_RETURNS_PER_SHOP:,} per shop, not "
                       f"{args.returns:,}", EXIT_USAGE)
    if not 0 <= args.cancellations <= MAX_RETURNS_PER_SHOP:
        raise CliError(f"--cancellations must be 0 or more and at most {MAX_RETURNS_PER_SHOP:,} per shop, not "
                       f"{args.cancellations:,}", EXIT_USAGE)
    if not 1 <= args.shops <= MAX_SHOPS:
        raise CliError(f"--shops must be 1 or more and at most {MAX_SHOPS}, not {args.shops:,}", EXIT_USAGE)
    if not 1 <= args.apps <= min(MAX_APPS, args.shops):
        raise CliError(f"--apps must be 1 or more and at most {min(MAX_APPS, args.shops)} (every app has a shop "
                       f"at least), not {args.apps:,}", EXIT_USAGE)
    state = Path(args.state) if args.state else None
    if state is not None and (state.is_dir() or not state.parent.is_dir()):
        raise CliError(f"--state {state} must be a file in a folder that exists", EXIT_USAGE)
    try:
        live = server.live_options(args)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    try:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a user stops the server
            server.serve_forever(args.port, args.seed, args.returns, args.shops, state_path=state, out=sys.stdout,
                                 apps=args.apps, cancellations=args.cancellations, **live)
    except SandboxStateError as exc:  # already says what is wrong with the file and what to do
        raise CliError(f"--state: {exc}", EXIT_USAGE) from None
    return EXIT_OK


# --- entry point --------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    debug = os.environ.get(ENV_DEBUG, "").strip() not in ("", "0")
    logging.basicConfig(level=logging.DEBUG if debug else logging.ERROR, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    keep_files_private()  # the store, its WAL, exports and backups hold customer data
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        _err("error: interrupted")
        return 130
    except CliError as exc:
        _err(f"error: {_one_line(exc)}")
        return exc.code
    except Exception as exc:
        failure = explain(exc)  # the one place that words every failure
        if failure.kind is FailureKind.UNEXPECTED:
            if debug:
                raise
            _err(f"error: unexpected {exc.__class__.__name__}: {_one_line(exc)} (set {ENV_DEBUG}=1 for details)")
            return EXIT_FAILED
        _err(f"error: {_one_line(failure)}")
        return EXIT_USAGE if failure.kind is FailureKind.INPUT else EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
