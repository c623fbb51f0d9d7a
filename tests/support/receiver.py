"""A real webhook receiver: an HTTP server on loopback that records every request, and can
be told to fail the next few. Signatures are checked with the standardwebhooks SDK, as a
receiver would."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.fail_next = 0
        self.fail_status = 500
        self.delay = 0.0  # seconds each answer takes: requests stay in flight that long
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver._lock:
                    status = 200
                    if receiver.fail_next > 0:
                        receiver.fail_next -= 1
                        status = receiver.fail_status
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.requests.append(Received(headers, body, status))
                time.sleep(receiver.delay)
                # The sender may be gone (killed mid-request): the request still counts as
                # received, as it would at a real receiver.
                with contextlib.suppress(OSError):
                    self.send_response(status)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.requests)

    def accepted(self, secret: str) -> list[tuple[str, dict[str, Any]]]:
        """(webhook-id, payload) of each request answered 2xx, every signature verified
        (a bad one raises)."""
        verifier = Webhook(secret)
        out = []
        for request in self.snapshot():
            payload = verifier.verify(request.body, request.headers)
            assert payload == json.loads(request.body)
            if 200 <= request.status < 300:
                out.append((request.webhook_id, payload))
        return out

    def types(self, secret: str) -> Counter[str]:
        return Counter(payload["type"] for _, payload in self.accepted(secret))
