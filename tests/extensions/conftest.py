"""A real HTTP endpoint in the test process that receives callouts and verifies them with the
Standard Webhooks library, and builders for extensions attached to policies."""

import base64
import http.server
import secrets
import socket
import threading

import pytest
from standardwebhooks import Webhook

from tests.extensions.helpers import SECRET_VARIABLE


class Receiver:
    """What the endpoint received; ``status`` is what it answers (503: down)."""

    def __init__(self, secret):
        self.secret = secret
        self.status = 200
        self.calls = []  # every POST, verified or not, with the status answered
        self._lock = threading.Lock()

    @property
    def delivered(self):
        """The callouts accepted (verified and answered 2xx)."""
        return [c for c in self.calls if c["verified"] and 200 <= c["answered"] < 300]

    def record(self, headers, body):
        try:
            payload = Webhook(self.secret).verify(body, headers)
            verified = True
        except Exception:  # noqa: BLE001 - any failure means "not verified"
            payload, verified = None, False
        with self._lock:
            self.calls.append(
                {
                    "headers": headers,
                    "body": body,
                    "payload": payload,
                    "verified": verified,
                    "answered": self.status if verified else 401,
                }
            )
        return self.calls[-1]["answered"]


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def signing_secret(monkeypatch):
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    monkeypatch.setenv(SECRET_VARIABLE, secret)
    return secret


@pytest.fixture
def receiver(signing_secret, settings):
    """An http.server on a free port of 127.0.0.1, in a thread of this process."""
    settings.CUSTOM_EXTENSIONS_ALLOW_HTTP = True
    settings.CUSTOM_EXTENSIONS_ALLOW_PRIVATE_NETWORKS = True  # it listens on 127.0.0.1
    received = Receiver(signing_secret)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            answered = received.record(dict(self.headers.items()), body)
            self.send_response(answered)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", _free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    received.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/access"
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
