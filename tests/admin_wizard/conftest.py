"""A catalog owned by Olga with a group and an application, and a second catalog she does not
own; the guided flow is driven step by step as a browser without JavaScript would."""

from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse

from entitlements.models import AdminRole, RoleAssignment
from tests.factories import CatalogFactory, GroupFactory, GroupResourceFactory, UserFactory

NEW = reverse("admin:entitlements_accesspackage_wizard")


@pytest.fixture
def catalog(db, catalog_owner):
    catalog = CatalogFactory(display_name="Finance")
    RoleAssignment.objects.create(
        role=AdminRole.CATALOG_OWNER, principal=catalog_owner, catalog=catalog
    )
    return catalog


@pytest.fixture
def other_catalog(db):
    other = CatalogFactory(display_name="Engineering")
    owner = UserFactory(email="eve@example.com", display_name="Eve Other", is_staff=True)
    RoleAssignment.objects.create(role=AdminRole.CATALOG_OWNER, principal=owner, catalog=other)
    other.owner = owner
    return other


@pytest.fixture
def reports_group(catalog):
    return GroupResourceFactory(catalog=catalog, group=GroupFactory(display_name="Finance reports"))


@pytest.fixture
def ledger_group(catalog):
    return GroupResourceFactory(catalog=catalog, group=GroupFactory(display_name="Ledger"))


@pytest.fixture
def foreign_group(other_catalog):
    return GroupResourceFactory(
        catalog=other_catalog, group=GroupFactory(display_name="Build servers")
    )


def role(resource, name="Member"):
    return resource.roles.get(display_name=name)


class Flow:
    """One run of the guided flow through the test client."""

    def __init__(self, client, start=NEW):
        self.client = client
        response = client.get(start)
        assert response.status_code == 302, response
        self.url = response["Location"]
        query = parse_qs(urlparse(self.url).query)
        self.base = self.url.split("?")[0]
        self.draft = query["draft"][0]

    def step_url(self, step):
        return f"{self.base}?draft={self.draft}&step={step}"

    def get(self, step):
        return self.client.get(self.step_url(step))

    def post(self, step, data, button="_next"):
        return self.client.post(self.step_url(step), {**data, button: "1"})


def stage_data(n, **fields):
    return {f"stage{n}-{key}": value for key, value in fields.items()}


def questions_data(*questions):
    data = {
        "questions-TOTAL_FORMS": str(max(len(questions), 2)),
        "questions-INITIAL_FORMS": "0",
        "questions-MIN_NUM_FORMS": "0",
        "questions-MAX_NUM_FORMS": "20",
    }
    for i, question in enumerate(questions):
        question = {"question_type": "textInput", "is_single_line_question": "on", **question}
        data.update({f"questions-{i}-{key}": value for key, value in question.items()})
    return data
