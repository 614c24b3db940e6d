"""The sandbox over real HTTP: API paths and the auth host's token paths on one port.

`serve_forever` is the `python -m returns_core sandbox serve` command: it prints what a user needs
to connect Returns Desk to the sandbox, then serves until Ctrl-C.
"""

from __future__ import annotations

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


def serve_forever(port: int, seed: int, returns: int, shops: int, state_path: Path | None = None,
                  out: TextIO = sys.stdout, stop: threading.Event | None = None) -> None:
    """Run the sandbox on 127.0.0.1:`port` until Ctrl-C (or until `stop` is set), after printing
    the base URL, the sandbox app credentials, a fresh auth code and the command that connects it."""
    from .core import Sandbox  # core.py imports this module for Sandbox.serve

    sandbox = Sandbox(seed=seed, shops=shops, returns=returns, state_path=state_path)
    with sandbox.serve(host="127.0.0.1", port=port) as server:
        print(_banner(sandbox, server.url, sandbox.issue_auth_code(), returns), file=out, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            (stop or threading.Event()).wait()
        print("Sandbox stopped.", file=out, flush=True)


def _banner(sandbox: Sandbox, url: str, auth_code: str, returns: int) -> str:
    command = ["python", "-m", "returns_core", "accounts", "add", "sandbox", "--app-key", sandbox.app_key,
               "--app-secret", sandbox.app_secret, "--auth-code", auth_code, "--api-base", url, "--auth-base", url]
    anchor = datetime.fromtimestamp(sandbox.anchor, UTC).strftime("%Y-%m-%d %H:%M UTC")
    shops = "\n".join(f"    {s['name']} ({s['region']}, shop id {s['id']})" for s in sandbox.shops)
    return "\n".join([
        "TikTok Shop SANDBOX: a local simulator, not TikTok. The app key and secret below are public demo values.",
        f"  Base URL (API and auth):  {url}",
        f"  App key (sandbox):        {sandbox.app_key}",
        f"  App secret (sandbox):     {sandbox.app_secret}",
        f"  Auth code:                {auth_code}   (one use, valid 30 minutes; restart for a new one)",
        f"  World:                    seed {sandbox.seed}, {returns} returns per shop before {anchor}",
        "  Shops:",
        shops,
        "",
        "Connect Returns Desk to it:",
        "  " + shlex.join(command),
        "",
        "Press Ctrl-C to stop.",
    ])
