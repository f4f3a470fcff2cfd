"""A slow endpoint cannot hold a worker past the extension's timeout: the status is taken as
soon as it comes, and the body is never read."""

import http.server
import threading
import time

import pytest

from entitlements.services.requests import request_submit
from extensions.models import CalloutState, CustomExtensionCallout, Stage
from tests.extensions.helpers import attach_extension
from tests.lifecycle.requests_setup import open_policy

pytestmark = pytest.mark.django_db


@pytest.fixture
def dripping_endpoint(settings):
    """Answers 200 at once, then drips its body one byte every second for 8 seconds."""
    settings.CUSTOM_EXTENSIONS_ALLOW_HTTP = True
    settings.CUSTOM_EXTENSIONS_ALLOW_PRIVATE_NETWORKS = True

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", "8")
            self.end_headers()
            try:
                for _ in range(8):
                    time.sleep(1)
                    self.wfile.write(b"x")
                    self.wfile.flush()
            except OSError:
                pass  # the caller hung up: what it should do

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def test_a_body_dripping_slower_than_the_timeout_does_not_hold_the_worker(
    requester, dripping_endpoint, signing_secret, django_capture_on_commit_callbacks
):
    policy = open_policy()
    attach_extension(policy, Stage.REQUEST_GRANTED, url=dripping_endpoint, timeout_seconds=2)
    started = time.monotonic()

    with django_capture_on_commit_callbacks(execute=True):
        request_submit(actor=requester, target=requester, access_package=policy.access_package)

    assert time.monotonic() - started < 4
    callout = CustomExtensionCallout.objects.get()
    assert callout.state == CalloutState.CALLOUT_SENT
    assert callout.attempts[0]["durationMs"] < 2000
