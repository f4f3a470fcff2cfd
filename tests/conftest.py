"""Shared fixtures: one set of personas used by every test."""

import pytest

from tests.factories import UserFactory


@pytest.fixture
def manager(db):
    return UserFactory(email="manager@example.com", display_name="Mona Manager")


@pytest.fixture
def requester(db, manager):
    return UserFactory(
        email="requester@example.com", display_name="Rita Requester", manager=manager
    )


@pytest.fixture
def approver(db):
    return UserFactory(email="approver@example.com", display_name="Arno Approver")


@pytest.fixture
def catalog_owner(db):
    return UserFactory(email="owner@example.com", display_name="Olga Owner", is_staff=True)


@pytest.fixture
def admin_user(db):
    return UserFactory(
        email="admin@example.com", display_name="Ada Admin", is_staff=True, is_superuser=True
    )


@pytest.fixture
def outsider(db):
    return UserFactory(email="outsider@example.com", display_name="Otto Outsider")
