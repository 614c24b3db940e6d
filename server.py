"""The app's server: the Streamlit app (app.py) and TikTok's webhook receiver on one port.

`streamlit run server.py` (what run.sh does) finds the `st.App` below and serves it with uvicorn:
every page of app.py as before, plus POST /webhooks/tiktok beside them. config.toml, secrets.toml
and flags such as --server.port apply as with `streamlit run app.py` (README, "Webhooks").
app.py stays the Streamlit script: AppTest and the browser tests run it directly.

The handler is small on purpose: it reads the raw body (at most 1 MB) and hands it to
returns_core.webhooks, which verifies, stores and answers. The lifespan starts that receiver's
worker and, for the embedded demo shop, lets the demo sandbox tick and deliver here.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import streamlit as st
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from streamlit import config as st_config

from app_ui.runtime import encryption_key
from returns_core import config, demo, webhooks
from returns_core.explain import explain_error
from returns_core.store.db import UPGRADE_TIME, Database, StoreError

logger = logging.getLogger("returns_desk.server")

# the receiver the lifespan started; None before it runs (or when it could not start)
_running: dict[str, Any] = {}


def own_address(port: int | None = None) -> str:
    """This server's receiver as seen from this machine, from Streamlit's server options (by the
    time the lifespan runs, server.port holds the port actually bound, also for --server.port 0)."""
    return webhooks.local_address(port if port is not None else st_config.get_option("server.port"),
                                  st_config.get_option("server.address"),
                                  https=bool(st_config.get_option("server.sslCertFile")))


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def start_receiver(*, db_path: str | None = None, key: str | None = None, address: str | None = None,
                   with_demo: bool = True, client_options: dict[str, Any] | None = None) -> webhooks.Inbox | None:
    """Open the store, start the inbox's worker, and let the demo shop deliver to `address`.

    The defaults are the app's (tests pass their own): the configured store and key, this server's
    own address, the demo shop, the worker's usual TikTok client options.
    """
    db = Database(config.db_path(db_path), key=key or encryption_key())
    try:
        if db.upgrade_pending():
            _say(f"Upgrading {db.path.name} to this version's schema ({UPGRADE_TIME}) ...")
        db.migrate()
    except StoreError as exc:
        # the pages still open (and say what is wrong); TikTok gets 503 and retries later
        _say(f"Webhook receiver not started: {exc}")
        return None
    inbox = webhooks.Inbox(db, client_options=client_options).start()
    _running["inbox"] = inbox
    address = address or own_address()
    _say(f"Webhook receiver: POST {address}")
    if with_demo:
        try:
            demo.ensure_demo_account(db)
            why_not = demo.start_live(db, address)
        except Exception as exc:  # noqa: BLE001 - the app must run even when the demo shop cannot go live
            why_not = explain_error(exc)
        if why_not:
            _say(f"Demo shop webhooks are off: {why_not}")
    return inbox


def stop_receiver() -> None:
    inbox = _running.pop("inbox", None)
    if inbox is not None:
        demo.stop_live(inbox.db.path)
        inbox.stop()


def receiver_lifespan(**options: Any) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """The lifespan that runs the receiver while the server runs (options: see start_receiver)."""

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        await run_in_threadpool(lambda: start_receiver(**options))
        try:
            yield
        finally:
            await run_in_threadpool(stop_receiver)

    return lifespan


async def receive_webhook(request: Request) -> Response:
    """POST /webhooks/tiktok: TikTok's events. GET says what this address is."""
    if request.method != "POST":
        return PlainTextResponse("Returns Desk's TikTok Shop webhook receiver: TikTok POSTs signed events here.",
                                 405, headers={"Allow": "POST"})
    inbox = _running.get("inbox")
    if inbox is None:
        return PlainTextResponse("The webhook receiver is not running; send it again later.", 503)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > webhooks.MAX_BODY_BYTES:
        return PlainTextResponse("The body is too large for a TikTok event.", 413)
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > webhooks.MAX_BODY_BYTES:
                return PlainTextResponse("The body is too large for a TikTok event.", 413)
    except ClientDisconnect:
        return PlainTextResponse("The body did not arrive whole.", 400)
    # verifying and storing wait on the database: off the event loop, which serves the pages too
    answer = await run_in_threadpool(inbox.receive, bytes(body), request.headers.get("authorization"))
    return PlainTextResponse(answer.text, answer.status)


ROUTES = [Route(webhooks.PATH, receive_webhook, methods=["POST", "GET"])]

app = st.App("app.py", routes=ROUTES, lifespan=receiver_lifespan())
