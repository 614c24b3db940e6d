"""The sandbox over real HTTP: API paths and the auth host's token paths on one port.

`serve_forever` is the `python -m returns_core sandbox serve` command: it prints what a user needs
to connect Returns Desk to the sandbox, then serves until Ctrl-C, with the world ticking on its own
and webhooks going out to the addresses shops subscribe through PUT /event/202309/webhooks.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import socket
import struct
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, TextIO
from urllib.parse import parse_qsl, unquote, urlsplit

if TYPE_CHECKING:
    from .core import Sandbox
    from .webhooks import WebhookSettings


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: Sandbox):
        super().__init__(address, _Handler)
        self.sandbox = sandbox
        self.connections: set[socket.socket] = set()  # open keep-alive connections, closed on stop
        self.connections_lock = threading.Lock()

    def handle_error(self, request, client_address) -> None:
        """A client dropping its connection (killed, timed out) is routine: no traceback for it."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: paging 200 pages must not pay a TCP handshake each
    disable_nagle_algorithm = True  # headers and body go out as two writes; don't wait for an ACK between
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        response = self.server.sandbox.answer(self.command, unquote(url.path),
                                              parse_qsl(url.query, keep_blank_values=True), headers, body)
        if response.fault == "reset":
            self._reset()
            return
        if response.delay:
            time.sleep(response.delay)
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. its timeout ran out first)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def _reset(self) -> None:
        """Drop the connection with a TCP RST, as a crashed proxy would."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the sandbox is used by tests and demos, not operated."""


class SandboxServer:
    """A ThreadingHTTPServer on a daemon thread; `url` is its base URL."""

    def __init__(self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0):
        self._httpd = _HTTPServer((host, port), sandbox)
        self.url = f"http://{host}:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="tiktok-sandbox", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        with self._httpd.connections_lock:
            for connection in list(self._httpd.connections):
                with contextlib.suppress(OSError):  # already gone
                    connection.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        self._thread.join(timeout=5)


def add_live_arguments(parser: argparse.ArgumentParser) -> None:
    """The `sandbox serve` flags for the world's clock and webhook delivery (TikTok's behaviour by default)."""
    from .webhooks import WebhookSettings

    default = WebhookSettings()
    parser.add_argument("--tick", type=float, default=1.0, metavar="SECONDS",
                        help="move the world every SECONDS (default %(default)s)")
    parser.add_argument("--webhook-duplicates", type=float, default=default.duplicate_rate, metavar="SHARE",
                        help="share of webhooks sent twice, 0-1 (default %(default)s)")
    parser.add_argument("--webhook-reorder", type=float, default=default.reorder_rate, metavar="SHARE",
                        help="share of webhooks held back so later ones overtake them, 0-1 (default %(default)s)")
    parser.add_argument("--webhook-retry-delays", default=",".join(f"{d:g}" for d in default.retry_delays),
                        metavar="S,S,...", help="seconds before each retry of a failed webhook; '' for none "
                                                "(default TikTok's: %(default)s)")
    parser.add_argument("--webhook-seed", type=int, default=None, metavar="N",
                        help="seed for duplicates and reordering (default: --seed)")
    parser.add_argument("--app-rate-limit", type=float, default=None, metavar="N",
                        help="answer 429 (code 36009002) past N requests per second per app, as TikTok "
                             "does; default: no limit")


def live_options(args: argparse.Namespace) -> dict:
    """serve_forever's `tick` and `webhooks` from add_live_arguments' flags; ValueError says what is wrong."""
    from .webhooks import WebhookSettings

    try:
        delays = tuple(float(part) for part in args.webhook_retry_delays.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"--webhook-retry-delays must be seconds separated by commas, not "
                         f"{args.webhook_retry_delays!r}") from None
    if not args.tick > 0:
        raise ValueError("--tick must be above 0 seconds")
    if args.app_rate_limit is not None and not args.app_rate_limit > 0:
        raise ValueError("--app-rate-limit must be above 0 requests per second")
    settings = WebhookSettings(duplicate_rate=args.webhook_duplicates, reorder_rate=args.webhook_reorder,
                               retry_delays=delays, seed=args.webhook_seed)
    return {"tick": args.tick, "webhooks": settings, "app_rate_limit": args.app_rate_limit}


def serve_forever(port: int, seed: int, returns: int, shops: int, state_path: Path | None = None,
                  out: TextIO = sys.stdout, stop: threading.Event | None = None, *,
                  webhooks: WebhookSettings | None = None, tick: float = 1.0,
                  app_rate_limit: float | None = None, apps: int = 1, cancellations: int = 0) -> None:
    """Run the sandbox on 127.0.0.1:`port` until Ctrl-C (or until `stop` is set), after printing
    the base URL, the sandbox app credentials, a fresh auth code and the command that connects it.
    The world moves every `tick` seconds; `webhooks` tunes delivery (duplicates, reordering, retries)."""
    from .core import Sandbox  # core.py imports this module for Sandbox.serve

    sandbox = Sandbox(seed=seed, shops=shops, returns=returns, state_path=state_path, webhooks=webhooks,
                      app_rate_limit=app_rate_limit, apps=apps, cancellations=cancellations)
    with sandbox.serve(host="127.0.0.1", port=port, tick=tick) as server:
        codes = [sandbox.issue_auth_code(app_key=app.key) for app in sandbox.apps]
        print(_banner(sandbox, server.url, codes, returns), file=out, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            (stop or threading.Event()).wait()
        print("Sandbox stopped.", file=out, flush=True)


def _banner(sandbox: Sandbox, url: str, auth_codes: list[str], returns: int) -> str:
    """What a user needs to connect: per app, its keys, a fresh auth code and the connect command."""
    anchor = datetime.fromtimestamp(sandbox.anchor, UTC).strftime("%Y-%m-%d %H:%M UTC")
    several = len(sandbox.apps) > 1
    credentials = "app keys and secrets" if several else "app key and secret"
    lines = [f"TikTok Shop SANDBOX: a local simulator, not TikTok. The {credentials} below are public demo values.",
             f"  Base URL (API and auth):  {url}"]
    shops = {shop["id"]: shop for shop in sandbox.shops}
    connect = []
    for number, (app, code) in enumerate(zip(sandbox.apps, auth_codes, strict=True), start=1):
        if several:
            lines.append(f"  App {number} of {len(sandbox.apps)}, {len(app.shop_ids)} shops:")
        lines += [f"  App key (sandbox):        {app.key}",
                  f"  App secret (sandbox):     {app.secret}",
                  f"  Auth code:                {code}   (one use, valid 30 minutes; restart for a new one)"]
        name = f"sandbox-app-{number}" if several else "sandbox"
        connect.append("  " + shlex.join(["python", "-m", "returns_core", "accounts", "add", name, "--app-key", app.key,
                                          "--app-secret", app.secret, "--auth-code", code, "--api-base", url,
                                          "--auth-base", url]))
    lines += [f"  World:                    seed {sandbox.seed}, {returns} returns per shop before {anchor}",
              "  Shops:"]
    for number, app in enumerate(sandbox.apps, start=1):
        owner = f"; app {number}" if len(sandbox.apps) > 1 else ""
        lines += [f"    {shops[i]['name']} ({shops[i]['region']}, shop id {i}{owner})" for i in app.shop_ids]
    return "\n".join([
        *lines,
        "",
        "Connect Returns Desk to it:" if len(connect) == 1 else "Connect Returns Desk to it (one command per app):",
        *connect,
        "",
        "Webhooks: subscribe a shop with PUT /event/202309/webhooks (signed like any call). TikTok only takes a",
        "  public https:// domain; the sandbox also takes http://127.0.0.1:PORT/... and signs each event's",
        "  Authorization header with the app secret of the shop's app.",
        f"  {_delivery(sandbox)}",
        "",
        "Press Ctrl-C to stop.",
    ])


def _delivery(sandbox: Sandbox) -> str:
    """One line on how this sandbox delivers: its duplicate and hold-back rates and retry delays."""
    settings = sandbox.webhooks.settings
    retries = ", ".join(_duration(d) for d in settings.retry_delays) or "none"
    return (f"Delivery: {settings.duplicate_rate:.0%} twice, {settings.reorder_rate:.0%} held back up to "
            f"{settings.reorder_delay:g} s, retries after {retries}.")


def _duration(seconds: float) -> str:
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"
