"""Graph's conventions, shown on catalogs: lists, paging, $filter, $orderby, $select,
errors in Graph's shape, request ids, create/update/delete through the audited services."""

import json

import pytest

from entitlements.models import AdminRole, AuditEvent, Catalog, RoleAssignment
from tests.factories import CatalogFactory

URL = "/v1.0/identityGovernance/entitlementManagement/catalogs"

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_a_list_is_graph_shaped_and_pages_with_an_opaque_skiptoken(admin_client):
    for i in range(7):
        CatalogFactory(display_name=f"Catalog {i:02}")
    seen = []
    url = f"{URL}?$top=3&$filter=startswith(displayName,'Catalog')"
    pages = 0
    while url:
        response = admin_client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["@odata.context"].endswith(
            "$metadata#identityGovernance/entitlementManagement/catalogs"
        )
        seen += [row["displayName"] for row in body["value"]]
        url = body.get("@odata.nextLink")
        pages += 1
    assert seen == [f"Catalog {i:02}" for i in range(7)]
    assert pages == 3


def test_orderby_descending_and_count(admin_client):
    for name in ("A", "B", "C"):
        CatalogFactory(display_name=name)
    body = admin_client.get(
        f"{URL}?$orderby=displayName desc&$filter=displayName in ('A','B','C')&$count=true&$top=2"
    ).json()
    assert [row["displayName"] for row in body["value"]] == ["C", "B"]
    assert body["@odata.count"] == 3
    second = admin_client.get(body["@odata.nextLink"]).json()
    assert [row["displayName"] for row in second["value"]] == ["A"]
    assert "@odata.nextLink" not in second


def test_select_keeps_the_named_properties_and_the_id(admin_client):
    catalog = CatalogFactory(display_name="Only")
    body = admin_client.get(f"{URL}/{catalog.pk}?$select=displayName").json()
    assert set(body) == {"@odata.context", "id", "displayName"}


@pytest.mark.parametrize(
    "query, code",
    [
        ("$filter=password eq 'x'", "InvalidFilter"),
        ("$filter=displayName eq", "InvalidFilter"),
        ("$filter=displayName eq 'a' and", "InvalidFilter"),
        ("$orderby=password", "BadRequest"),
        ("$select=secret", "BadRequest"),
        ("$expand=nothing", "BadRequest"),
        ("$top=-1", "BadRequest"),
        ("$top=abc", "BadRequest"),
        ("$skiptoken=forged", "BadRequest"),
        ("$unknown=1", "BadRequest"),
    ],
)
def test_bad_query_options_answer_400_in_graphs_error_shape(admin_client, query, code):
    response = admin_client.get(f"{URL}?{query}")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["innerError"]["request-id"] == response["request-id"]
    assert error["innerError"]["date"]


def test_unknown_ids_and_paths_answer_graph_errors(admin_client):
    missing = admin_client.get(f"{URL}/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ResourceNotFound"
    assert admin_client.get(f"{URL}/not-a-uuid").status_code == 404
    unknown = admin_client.get("/v1.0/identityGovernance/nothingHere")
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "BadRequest"


def test_no_session_and_no_token_is_401_with_a_bearer_challenge(client):
    response = client.get(URL)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_create_update_delete_go_through_the_audited_services(admin_client, admin_user):
    response = admin_client.post(
        URL, {"displayName": "Sales", "description": "Sales tools"}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert response["Location"].endswith(f"/catalogs/{body['id']}")
    assert body["catalogType"] == "userManaged" and body["state"] == "published"
    catalog = Catalog.objects.get(pk=body["id"])
    assert RoleAssignment.objects.filter(
        catalog=catalog, principal=admin_user, role=AdminRole.CATALOG_OWNER
    ).exists()

    patched = admin_client.patch(
        f"{URL}/{catalog.pk}", {"description": "Changed"}, content_type="application/json"
    )
    assert patched.status_code == 204
    catalog.refresh_from_db()
    assert catalog.description == "Changed"
    assert AuditEvent.objects.filter(action="catalog.changed", channel="api").exists()

    duplicate = admin_client.post(URL, {"displayName": "Sales"}, content_type="application/json")
    assert duplicate.status_code == 400
    assert (
        "displayName" in duplicate.json()["error"]["message"]
        or "name" in duplicate.json()["error"]["message"]
    )

    deleted = admin_client.delete(f"{URL}/{catalog.pk}")
    assert deleted.status_code == 204
    assert not Catalog.objects.filter(pk=catalog.pk).exists()
    assert AuditEvent.objects.filter(action="catalog.deleted", channel="api").exists()


def test_a_body_that_is_not_an_object_or_not_json_is_400(admin_client):
    assert admin_client.post(URL, "[1]", content_type="application/json").status_code == 400
    response = admin_client.post(URL, "{", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"


def test_a_person_without_roles_sees_no_catalogs_and_may_not_create_one(client, outsider):
    CatalogFactory(display_name="Hidden")
    client.force_login(outsider)
    assert client.get(URL).json()["value"] == []
    response = client.post(URL, {"displayName": "Mine"}, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Forbidden"
    assert not Catalog.objects.filter(display_name="Mine").exists()


def test_every_response_has_a_request_id(admin_client):
    response = admin_client.get(URL, HTTP_CLIENT_REQUEST_ID="abc-123")
    assert response["request-id"]
    assert response["client-request-id"] == "abc-123"


def test_a_nul_character_in_a_body_is_400_and_nothing_is_written(admin_client):
    response = admin_client.post(
        URL, '{"displayName": "A\\u0000B"}', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"
    assert not Catalog.objects.filter(display_name__startswith="A").exists()


@pytest.mark.parametrize(
    "query",
    [
        "$filter=createdDateTime gt 'abc'",
        "$filter=displayName eq 5",
        "$filter=isExternallyVisible eq 'x'",
        "$filter=id eq 'not-a-guid'",
        "$filter=state in ('published', 5)",
    ],
)
def test_a_literal_of_the_wrong_type_is_invalid_filter_not_a_database_error(admin_client, query):
    response = admin_client.get(f"{URL}?{query}")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "InvalidFilter"


def test_a_property_may_start_like_an_odata_keyword(admin_client):
    CatalogFactory(display_name="Visible", is_externally_visible=True)
    body = admin_client.get(
        f"{URL}?$filter=isExternallyVisible eq true and displayName ne 'null'"
    ).json()
    assert [row["displayName"] for row in body["value"]] == ["Visible"]
    # a property beginning with all/any/null/true is a name, not a keyword
    response = admin_client.get(f"{URL}?$filter=anyThing eq 'x'")
    assert response.json()["error"]["message"].endswith(
        "'anyThing' is not a property that can be filtered on."
    )


def test_a_syntax_error_says_where_it_is(admin_client):
    error = admin_client.get(f"{URL}?$filter=displayName eq 'a' and").json()["error"]
    assert error["code"] == "InvalidFilter"
    assert "Token(" not in error["message"]


def test_a_date_time_literal_filters_by_time(admin_client):
    CatalogFactory(display_name="Dated")
    body = admin_client.get(f"{URL}?$filter=createdDateTime gt 2000-01-01T00:00:00Z").json()
    assert "Dated" in [row["displayName"] for row in body["value"]]
    body = admin_client.get(f"{URL}?$filter=createdDateTime lt '2000-01-01T00:00:00Z'").json()
    assert body["value"] == []


def test_a_body_nested_too_deep_is_400(admin_client):
    deep = "[" * 100_000 + "]" * 100_000
    response = admin_client.post(URL, deep, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"
    shallow_but_over = '{"a": ' * 70 + "1" + "}" * 70
    assert (
        admin_client.post(URL, shallow_but_over, content_type="application/json").status_code == 400
    )


def test_a_body_too_large_is_413_in_graphs_shape(admin_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = '{"displayName": "' + "x" * 5000 + '"}'
    response = admin_client.post(URL, body, content_type="application/json")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "RequestEntityTooLarge"


def test_a_server_error_on_an_api_path_is_graph_json_with_the_request_id(rf):
    from config.views import server_error

    request = rf.get(URL)
    request.request_id = "rid-1"
    response = server_error(request)
    assert response.status_code == 500
    error = json.loads(response.content)["error"]
    assert error["code"] == "InternalServerError"
    assert error["innerError"]["request-id"] == "rid-1"


def test_a_path_with_a_newline_is_a_graph_400(admin_client):
    response = admin_client.get("/v1.0/identityGovernance/%0Acatalogs")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"displayName": "Typo", "descripton": "x"}, "descripton"),
        ({"displayName": 5}, "displayName"),
        ({"displayName": True}, "displayName"),
    ],
)
def test_an_unknown_property_or_a_number_for_text_is_400_and_nothing_is_made(
    admin_client, body, field
):
    response = admin_client.post(URL, body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["message"]
    assert not Catalog.objects.filter(display_name__in=["Typo", "5", "True"]).exists()


def test_odata_annotations_are_not_unknown_properties(admin_client):
    body = {"@odata.type": "#microsoft.graph.accessPackageCatalog", "displayName": "Annotated"}
    assert admin_client.post(URL, body, content_type="application/json").status_code == 201


def test_a_model_check_names_graphs_property(admin_client):
    CatalogFactory(display_name="Taken")
    response = admin_client.post(URL, {"displayName": "Taken"}, content_type="application/json")
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert message.startswith("displayName:") and "display_name" not in message


def test_swagger_ui_is_served_without_a_cdn(admin_client):
    response = admin_client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page and "cdn" not in page.lower()


def test_a_property_alone_is_a_condition_only_when_it_is_a_boolean(admin_client):
    CatalogFactory(display_name="Outside", is_externally_visible=True)
    body = admin_client.get(f"{URL}?$filter=isExternallyVisible").json()
    assert [row["displayName"] for row in body["value"]] == ["Outside"]
    response = admin_client.get(f"{URL}?$filter=state")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidFilter"


def test_count_is_true_or_false_as_written(admin_client):
    assert admin_client.get(f"{URL}?$count=TRUE").status_code == 400
