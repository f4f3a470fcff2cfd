"""A real SCIM 2.0 server process for the SCIM connector's tests (``scim2-server``).

``python -m tests.scimserver --token TOKEN`` serves the ``scim2-server`` application
(in-memory storage, the RFC 7643 schemas, every tenant created on its first request at
``/<tenant>/v2``) on a free port of 127.0.0.1, and prints ``Serving SCIM on http://...``. Each
test gets a tenant of its own, so its users and groups start empty.

In front of it a small WSGI middleware lets a test make the server answer errors for a while
(``POST /_control/<tenant>/faults``: the next ``count`` requests answer ``status``, with a
``Retry-After`` header when given; several such faults are answered one after the other)
and read what the server received (``GET /_control/<tenant>/requests``). The SCIM requests
themselves are served by the real server: nothing of the protocol is imitated here.

Fixtures: ``scim_server_process`` (one per test session) and ``scim_server`` (a fresh tenant).
Without the server the tests skip locally and fail in CI.
"""

import argparse
import base64
import json
import secrets
import threading
import time
import uuid
from collections import defaultdict

import pytest

CONTROL_PREFIX = "/_control/"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


# --------------------------------------------------------------------------------------
# The server process
# --------------------------------------------------------------------------------------


class Faults:
    """WSGI middleware: answers injected errors per tenant, and logs the requests served."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        # tenant -> faults to answer, in order: {"status", "count", "retry_after", "detail", ...}
        self.plans = defaultdict(list)
        self.log = defaultdict(list)  # tenant -> [{"at", "method", "path", "query", "status"}]

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(CONTROL_PREFIX):
            return self.control(environ, start_response, path[len(CONTROL_PREFIX) :])
        tenant = path.split("/")[1] if path.count("/") > 1 else ""
        method = environ["REQUEST_METHOD"]
        entry = {
            "at": time.time(),
            "method": method,
            "path": path,
            "query": environ.get("QUERY_STRING", ""),
            "status": None,
        }
        with self.lock:
            self.log[tenant].append(entry)
            plans = self.plans[tenant]
            fault = None
            if plans and (not plans[0]["methods"] or method in plans[0]["methods"]):
                fault = dict(plans[0])
                plans[0]["count"] -= 1
                if plans[0]["count"] <= 0:
                    plans.pop(0)
        if fault is not None:
            entry["status"] = fault["status"]
            return self.answer_fault(fault, start_response)

        def recording_start_response(status, headers, *args):
            entry["status"] = int(status.split(" ", 1)[0])
            return start_response(status, headers, *args)

        return self.app(environ, recording_start_response)

    @staticmethod
    def answer_fault(fault, start_response):
        status = fault["status"]
        headers = [("Content-Type", "application/scim+json")]
        if fault["retry_after"] is not None:
            headers.append(("Retry-After", str(fault["retry_after"])))
        body = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": fault["detail"]}
        if fault["scim_type"]:
            body["scimType"] = fault["scim_type"]
        start_response(f"{status} Injected", headers)
        return [json.dumps(body).encode()]

    def control(self, environ, start_response, rest):
        tenant, _, what = rest.partition("/")
        method = environ["REQUEST_METHOD"]
        if what == "faults" and method == "POST":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(size) or b"{}")
            with self.lock:
                self.plans[tenant].append(
                    {
                        "status": int(body.get("status", 500)),
                        "count": int(body.get("count", 1)),
                        "retry_after": body.get("retry_after"),
                        "detail": body.get("detail", "Injected failure"),
                        "scim_type": body.get("scim_type", ""),
                        "methods": set(body.get("methods") or ()),
                    }
                )
            answer = {"ok": True}
        elif what == "requests" and method == "GET":
            with self.lock:
                answer = list(self.log[tenant])
        elif what == "requests" and method == "DELETE":
            with self.lock:
                self.log[tenant].clear()
            answer = {"ok": True}
        else:
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b'{"error": "unknown control request"}']
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(answer).encode()]


def build_application(tokens, basic):
    """The scim2-server application of its command (``scim2-server --dynamic-tenants``), with
    bearer tokens and, besides them, one basic-auth user:password."""
    from scim2_models import ScimProvider, UnauthorizedException
    from scim2_server.applications.wsgi import TenantDispatcher
    from scim2_server.memory import InMemoryStorage
    from scim2_server.service import ScimService
    from scim2_server.testserver.application import BEARER_TOKEN_SCHEME, BearerTokenApplication
    from scim2_server.utils import (
        load_default_resource_types,
        load_default_schemas,
        load_default_service_provider_config,
    )

    config = load_default_service_provider_config()
    config.authentication_schemes = [*(config.authentication_schemes or []), BEARER_TOKEN_SCHEME]
    provider = ScimProvider.from_discovery(
        load_default_schemas().values(), load_default_resource_types().values(), config=config
    )
    service = ScimService(provider, secret=secrets.token_urlsafe(32))
    expected_basic = "Basic " + base64.b64encode(basic.encode()).decode() if basic else None

    class Application(BearerTokenApplication):
        def check_auth(self, request):
            if expected_basic and request.header("Authorization") == expected_basic:
                return
            if not self.bearer_tokens:
                raise UnauthorizedException
            super().check_auth(request)

    def make_tenant(tenant):
        return Application(InMemoryStorage(), provider, service=service, bearer_tokens=tokens)

    return Faults(TenantDispatcher(make_tenant))


def serve(argv=None):
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from scim2_server.testserver.cli import ThreadingWSGIServer

    parser = argparse.ArgumentParser(prog="python -m tests.scimserver")
    parser.add_argument("--token", action="append", default=[])
    parser.add_argument("--basic", default="", metavar="USER:PASSWORD")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - the base class's name
            pass

    app = build_application(args.token, args.basic)
    with make_server(
        "127.0.0.1", args.port, app, server_class=ThreadingWSGIServer, handler_class=QuietHandler
    ) as server:
        print(f"Serving SCIM on http://127.0.0.1:{server.server_port}", flush=True)
        server.serve_forever()


# --------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------


class ScimServerProcess:
    """The running server: its port, its bearer token and its basic-auth credentials."""

    def __init__(self):
        import os
        import queue
        import subprocess
        import sys

        from django.conf import settings

        self.token = secrets.token_urlsafe(24)
        self.basic_user, self.basic_password = "provisioning", secrets.token_urlsafe(12)
        command = [
            sys.executable,
            "-m",
            "tests.scimserver",
            "--token",
            self.token,
            "--basic",
            f"{self.basic_user}:{self.basic_password}",
        ]
        self.proc = subprocess.Popen(
            command,
            cwd=str(settings.BASE_DIR),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output = []
        lines = queue.Queue()

        def drain():
            for line in self.proc.stdout:
                self.output.append(line)
                lines.put(line)
            lines.put(None)

        threading.Thread(target=drain, daemon=True).start()
        self.port = None
        deadline = time.monotonic() + 90  # a loaded machine imports slowly
        while self.port is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            if line.startswith("Serving SCIM on http://127.0.0.1:"):
                self.port = int(line.rsplit(":", 1)[1])
        if self.port is None:
            self.close()

    @property
    def started(self):
        return self.port is not None

    def close(self):
        import subprocess

        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


class ScimTenant:
    """One test's tenant of the server: its base URL, fault control and direct reads.

    The helpers talk to the real server over HTTP, as another client of the application
    would (an administrator creating a group there, or checking who is in it).
    """

    def __init__(self, process, name):
        import httpx

        self.process = process
        self.name = name
        self.root = f"http://127.0.0.1:{process.port}"
        self.url = f"{self.root}/{name}/v2"
        self.token = process.token
        self.http = httpx.Client(
            base_url=self.url,
            headers={
                "Authorization": f"Bearer {process.token}",
                "Content-Type": "application/scim+json",
            },
            timeout=10,
        )

    # --- faults and the request log -------------------------------------------------------

    def fail_next(self, count, *, status=500, retry_after=None, detail=None, methods=()):
        """Make the next ``count`` SCIM requests (of ``methods``, or any) answer ``status``;
        after the faults asked for before, when there are some."""
        body = {
            "status": status,
            "count": count,
            "retry_after": retry_after,
            "detail": detail or f"Injected {status}",
            "methods": list(methods),
        }
        self.http.post(f"{self.root}{CONTROL_PREFIX}{self.name}/faults", json=body)

    def requests(self, method=None):
        """What the server received, oldest first: dicts with at, method, path, query, status."""
        rows = self.http.get(f"{self.root}{CONTROL_PREFIX}{self.name}/requests").json()
        return [r for r in rows if method is None or r["method"] == method]

    def forget_requests(self):
        self.http.delete(f"{self.root}{CONTROL_PREFIX}{self.name}/requests")

    # --- the application's data, read and written directly -------------------------------

    def _checked(self, response):
        assert response.status_code < 300, (response.status_code, response.text)
        return response.json() if response.content else None

    def create_group(self, display_name, member_ids=()):
        body = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": display_name,
            "members": [{"value": pk} for pk in member_ids],
        }
        return self._checked(self.http.post("/Groups", json=body))

    def create_user(self, user_name, email=None, **attributes):
        body = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": user_name,
            **({"emails": [{"value": email, "primary": True}]} if email else {}),
            **attributes,
        }
        return self._checked(self.http.post("/Users", json=body))

    def patch_group(self, group_id, *operations):
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}
        self._checked(
            self.http.patch(f"/Groups/{group_id}", json={**body, "Operations": operations})
        )

    def add_member(self, group_id, user_id):
        """Add a member by hand, as an administrator of the application would."""
        self.patch_group(group_id, {"op": "add", "path": "members", "value": [{"value": user_id}]})

    def remove_member(self, group_id, user_id):
        """Remove a member by hand, as an administrator of the application would."""
        self.patch_group(group_id, {"op": "remove", "path": f'members[value eq "{user_id}"]'})

    def users(self):
        found = self._checked(self.http.get("/Users", params={"count": 1000}))
        return found.get("Resources", [])

    def user_named(self, user_name):
        found = self._checked(
            self.http.get("/Users", params={"filter": f'userName eq "{user_name}"'})
        )
        resources = found.get("Resources", [])
        return resources[0] if resources else None

    def member_ids(self, group_id):
        group = self._checked(self.http.get(f"/Groups/{group_id}"))
        return [m["value"] for m in group.get("members") or []]

    def member_names(self, group_id):
        names = {u["id"]: u["userName"] for u in self.users()}
        return sorted(names.get(pk, pk) for pk in self.member_ids(group_id))

    def close(self):
        self.http.close()


def scim_system(tenant, monkeypatch, name="Wiki", **settings):
    """A connected SCIM system pointing at ``tenant``; its token in an environment variable."""
    from entitlements.models import ConnectedSystem

    variable = f"SCIM_TOKEN_{tenant.name.upper()}"
    monkeypatch.setenv(variable, tenant.token)
    return ConnectedSystem.objects.create(
        kind=ConnectedSystem.Kind.SCIM,
        name=name,
        settings={"url": tenant.url, "timeout": 10, **settings},
        secret_reference=variable,
    )


def scim_group_resource(system, group, catalog=None):
    """The application's ``group`` (as the server returned it) added to a catalog, with its
    Member role, as resource discovery adds it."""
    from entitlements.models import OriginSystem, Resource, ResourceRole
    from tests.factories import CatalogFactory

    resource = Resource.objects.create(
        catalog=catalog or CatalogFactory(),
        display_name=group["displayName"],
        origin_system=OriginSystem.GROUP,
        origin_id=group["id"],
        connected_system=system,
    )
    ResourceRole.objects.create(resource=resource, display_name="Member", origin_id="Member")
    return resource


@pytest.fixture(scope="session")
def scim_server_process():
    """One real SCIM 2.0 server process for the session; stopped at its end."""
    process = ScimServerProcess()
    if not process.started:
        from tests.services import _missing

        _missing("A SCIM 2.0 server (scim2-server):\n" + "".join(process.output[-20:]))
    try:
        yield process
    finally:
        process.close()


@pytest.fixture
def scim_server(scim_server_process):
    """A fresh, empty tenant of the SCIM server for one test."""
    tenant = ScimTenant(scim_server_process, f"t{uuid.uuid4().hex[:12]}")
    try:
        yield tenant
    finally:
        tenant.close()


# --------------------------------------------------------------------------------------
# Benchmark: python -m tests.scimserver --bench 200
# --------------------------------------------------------------------------------------


def bench(count):
    """Grant latency of the SCIM connector against a real server process: ``count`` grants,
    one after another, each to a person the application does not have yet (a lookup, a
    create, a PATCH), then the same grants again (a lookup, a PATCH), then the revokes."""
    import os
    import statistics

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from directory.models import User
    from entitlements.connectors.scim import ScimConnector
    from entitlements.models import ConnectedSystem, OriginSystem, Resource, ResourceRole

    process = ScimServerProcess()
    if not process.started:
        raise SystemExit("The SCIM server did not start:\n" + "".join(process.output))
    tenant = ScimTenant(process, "bench")
    try:
        group = tenant.create_group("Bench")
        os.environ["SCIM_BENCH_TOKEN"] = process.token
        system = ConnectedSystem(
            kind=ConnectedSystem.Kind.SCIM,
            name="Bench",
            settings={"url": tenant.url, "timeout": 10},
            secret_reference="SCIM_BENCH_TOKEN",
        )
        resource = Resource(
            display_name="Bench",
            origin_system=OriginSystem.GROUP,
            origin_id=group["id"],
            connected_system=system,
        )
        role = ResourceRole(resource=resource, display_name="Member", origin_id="Member")
        users = [
            User(email=f"bench-{i}@example.com", display_name=f"Bench User{i}")
            for i in range(count)
        ]
        connector = ScimConnector(system)

        def timed(method):
            seconds = []
            for user in users:
                began = time.perf_counter()
                connector.call(method, role, user)
                seconds.append(time.perf_counter() - began)
            return seconds

        results = [
            ("grant, new user (lookup + create + PATCH)", timed("grant")),
            ("grant, already a member (lookup + PATCH)", timed("grant")),
        ]
        assert len(tenant.member_ids(group["id"])) == count
        results.append(("revoke (lookup + PATCH)", timed("revoke")))
        assert tenant.member_ids(group["id"]) == []
        print(f"SCIM connector against scim2-server on 127.0.0.1, {count} sequential calls each:")
        for label, seconds in results:
            p95 = statistics.quantiles(seconds, n=20)[-1]
            print(
                f"  {label}: median {statistics.median(seconds) * 1000:.1f} ms, "
                f"p95 {p95 * 1000:.1f} ms"
            )
    finally:
        tenant.close()
        process.close()


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--bench"]:
        bench(int(sys.argv[2]) if len(sys.argv) > 2 else 200)
    else:
        serve()
