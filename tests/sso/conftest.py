"""A real OpenID Connect provider (node's oidc-provider, tests/oidc/) for the sign-in tests."""

import json
import runpy
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from tests.services import _missing

OIDC_DIR = Path(django_settings.BASE_DIR) / "tests" / "oidc"
CLIENT_ID = "entitlements-portal"
CLIENT_SECRET = "a-client-secret-only-the-tests-know"
PROVIDER_ID = "sso"
PROVIDER_NAME = "Single sign-on"
PASSWORD = "provider-password"


def require_node_provider():
    node = shutil.which("node")
    if node is None:
        _missing("node (runs the OpenID Connect provider)")
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        _missing("the provider's node modules (npm ci --prefix tests/oidc)")
    return node


class OidcProvider:
    """The running provider: its issuer, and the people who can sign in at it."""

    def __init__(self, process, issuer, accounts_file):
        self.process = process
        self.issuer = issuer
        self.accounts_file = accounts_file
        self.accounts = []

    def add_account(self, *, sub, email, email_verified, name="", password=PASSWORD):
        self.accounts.append(
            {
                "sub": sub,
                "email": email,
                "email_verified": email_verified,
                "name": name or email,
                "password": password,
            }
        )
        self.accounts_file.write_text(json.dumps(self.accounts))

    def clear(self):
        self.accounts = []
        self.accounts_file.write_text("[]")


def _wait_for_issuer(process, log):
    line = process.stdout.readline()
    if not line.startswith("issuer "):
        process.kill()
        raise RuntimeError(f"the OpenID Connect provider did not start: {line}{log.read_text()}")
    issuer = line.split(" ", 1)[1].strip()
    with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration", timeout=10) as r:
        assert json.load(r)["issuer"] == issuer
    return issuer


@pytest.fixture(scope="module")
def oidc_provider(live_server, tmp_path_factory):
    """oidc-provider on a free port of 127.0.0.1, its one client the live server's callback."""
    node = require_node_provider()
    workdir = tmp_path_factory.mktemp("oidc")
    accounts_file = workdir / "accounts.json"
    accounts_file.write_text("[]")
    log = workdir / "provider.log"
    callback = f"{live_server.url}/accounts/oidc/{PROVIDER_ID}/login/callback/"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [
                node,
                str(OIDC_DIR / "provider.mjs"),
                "--client-id",
                CLIENT_ID,
                "--client-secret",
                CLIENT_SECRET,
                "--redirect-uri",
                callback,
                "--accounts",
                str(accounts_file),
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=OIDC_DIR,
        )
    try:
        provider = OidcProvider(process, _wait_for_issuer(process, log), accounts_file)
        yield provider
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


@pytest.fixture
def sso(oidc_provider, settings, monkeypatch):
    """The product configured for this provider exactly as config/settings.py reads OIDC_*."""
    monkeypatch.setenv("OIDC_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("OIDC_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("OIDC_SERVER_URL", oidc_provider.issuer)
    monkeypatch.setenv("OIDC_PROVIDER_ID", PROVIDER_ID)
    monkeypatch.setenv("OIDC_PROVIDER_NAME", PROVIDER_NAME)
    configured = runpy.run_path(str(Path(settings.BASE_DIR) / "config" / "settings.py"))
    settings.SOCIALACCOUNT_PROVIDERS = configured["SOCIALACCOUNT_PROVIDERS"]
    yield oidc_provider
    oidc_provider.clear()
