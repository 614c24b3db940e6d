"""The sandbox as an httpx transport: the same answers as over HTTP, without sockets."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

import httpx

if TYPE_CHECKING:
    from .core import Sandbox


class SandboxTransport(httpx.BaseTransport):
    def __init__(self, sandbox: Sandbox):
        self._sandbox = sandbox

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        query = parse_qsl(request.url.query.decode("ascii"), keep_blank_values=True)
        response = self._sandbox.answer(request.method, request.url.path, query, dict(request.headers),
                                        request.read())
        if response.fault == "reset":
            raise httpx.ReadError("[Errno 104] Connection reset by peer", request=request)
        if response.delay:
            # a socket client would give up after its read timeout; behave the same in-process
            read_timeout = request.extensions.get("timeout", {}).get("read")
            if read_timeout is not None and response.delay > read_timeout:
                time.sleep(read_timeout)
                raise httpx.ReadTimeout("The read operation timed out", request=request)
            time.sleep(response.delay)
        return httpx.Response(response.status, headers=response.headers, content=response.body, request=request)
