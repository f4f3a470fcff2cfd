"""No input gets a server error: random bodies, filters and paths are answered with a SCIM
error body (or succeed), never a 500; two clients racing for one userName get a 201 and a
409."""

import json
import threading

import pytest
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scim.models import ScimUser
from tests.scim.conftest import ENTERPRISE, GROUP, USER, Scim

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
attribute_names = st.sampled_from(
    [
        "userName",
        "displayName",
        "emails",
        "active",
        "title",
        "name",
        "members",
        "externalId",
        ENTERPRISE,
        "schemas",
        "id",
        "meta",
        "groups",
        "password",
        "phoneNumbers",
    ]
)
resources = st.dictionaries(attribute_names, json_values, max_size=6).map(
    lambda d: {"schemas": [USER], "userName": "fuzz@example.com", **d}
)
operations = st.lists(
    st.fixed_dictionaries(
        {"op": st.sampled_from(["add", "replace", "remove", "Replace", "bogus"])},
        optional={
            "path": st.sampled_from(
                [
                    "title",
                    "active",
                    "emails",
                    'emails[type eq "work"].value',
                    "members",
                    f"{ENTERPRISE}:manager",
                    f"{ENTERPRISE}:department",
                    "name.givenName",
                    "userName",
                    "id",
                    "meta.created",
                    "[",
                    'members[value eq "x"]',
                ]
            )
            | st.text(max_size=15),
            "value": json_values,
        },
    ),
    max_size=3,
)
filters = st.lists(
    st.sampled_from(
        [
            "userName",
            "emails",
            "meta.created",
            "title",
            "active",
            ENTERPRISE + ":manager",
            "eq",
            "co",
            "sw",
            "pr",
            "gt",
            "and",
            "or",
            "not",
            "(",
            ")",
            "[",
            "]",
            '"a"',
            "true",
            "null",
            "1",
            '"2026-01-01T00:00:00Z"',
            "value",
            ".",
        ]
    ),
    max_size=8,
).map(" ".join)
FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _no_server_error(answer):
    status, body, response = answer
    assert status < 500, body
    if status >= 400:
        assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        assert response["Content-Type"].startswith("application/scim+json")


@pytest.mark.django_db
@FUZZ
@given(body=resources)
def test_a_random_user_body_is_never_a_server_error(scim, body):
    _no_server_error(scim.post("Users", body))


@pytest.mark.django_db
@FUZZ
@given(
    group=st.dictionaries(st.sampled_from(["displayName", "members", "externalId"]), json_values)
)
def test_a_random_group_body_is_never_a_server_error(scim, group):
    _no_server_error(scim.post("Groups", {"schemas": [GROUP], **group}))


@pytest.fixture
def ann(scim):
    return scim.create_user(
        "ann@example.com", emails=[{"value": "ann@example.com", "type": "work"}]
    )


@pytest.mark.django_db
@FUZZ
@given(ops=operations)
def test_a_random_patch_is_never_a_server_error(scim, ann, ops):
    _no_server_error(scim.patch(f"Users/{ann['id']}", ops))


@pytest.mark.django_db
@FUZZ
@given(expression=filters, start=st.integers(-3, 5), count=st.integers(-3, 500))
def test_a_random_filter_or_page_is_never_a_server_error(scim, ann, expression, start, count):
    query = {"filter": expression, "startIndex": start, "count": count}
    _no_server_error(scim.get("Users", QUERY_STRING="&".join(f"{k}={v}" for k, v in query.items())))


@pytest.mark.django_db
@FUZZ
@given(path=st.text(max_size=30), raw=st.binary(max_size=60))
def test_a_random_path_or_unreadable_body_is_never_a_server_error(scim, path, raw):
    path = path.replace("\x00", "").lstrip("/")
    _no_server_error(scim.call("POST", path or "Users", raw))


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_clients_creating_one_userName_at_once_get_a_201_and_a_409(provisioning):
    token = provisioning[1]
    body = json.dumps({"schemas": [USER], "userName": "race@example.com"})
    barrier, answers = threading.Barrier(2), []

    def create():
        try:
            barrier.wait()
            answers.append(Scim(Client(), token).post("Users", body)[:2])
        finally:
            close_old_connections()

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a[0] for a in answers) == [201, 409], [a[1].get("detail") for a in answers]
    assert ScimUser.objects.filter(user_name="race@example.com").count() == 1


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_patches_with_the_same_etag_at_once_get_one_success_and_one_412(provisioning):
    token = provisioning[1]
    scim = Scim(Client(), token)
    ann = scim.create_user("ann@example.com", title="Clerk")
    etag = scim.get(f"Users/{ann['id']}")[2]["ETag"]
    barrier, answers = threading.Barrier(2), []

    def patch(title):
        try:
            barrier.wait()
            operation = [{"op": "replace", "path": "title", "value": title}]
            answers.append(
                Scim(Client(), token).patch(f"Users/{ann['id']}", operation, HTTP_IF_MATCH=etag)[0]
            )
        finally:
            close_old_connections()

    threads = [threading.Thread(target=patch, args=(t,)) for t in ("Boss", "Chief")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) in ([204, 412], [200, 412]), answers
