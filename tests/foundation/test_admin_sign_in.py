"""Signing in to the admin goes through the product's sign-in (two-factor, rate limits)."""

import pytest

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_the_admin_sign_in_page_sends_to_the_product_sign_in_and_back(client):
    response = client.get("/admin/login/?next=/admin/entitlements/catalog/")
    assert response.status_code == 302
    assert response["Location"] == ("/accounts/login/?next=%2Fadmin%2Fentitlements%2Fcatalog%2F")


def test_a_password_posted_to_the_admin_sign_in_signs_nobody_in(client, admin_user):
    response = client.post("/admin/login/", {"username": admin_user.email, "password": PASSWORD})
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    assert "_auth_user_id" not in client.session


def test_an_offsite_next_is_not_followed(client):
    response = client.get("/admin/login/?next=https://evil.example/")
    assert response["Location"] == "/accounts/login/?next=%2Fadmin%2F"


def test_a_signed_in_person_without_a_role_is_refused(client, outsider):
    client.force_login(outsider)
    assert client.get("/admin/login/").status_code == 403
