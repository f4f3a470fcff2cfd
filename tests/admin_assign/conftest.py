"""A package to assign: one group it gives, one policy, a catalog owner who may assign it."""

import pytest

from entitlements.models import AdminRole, RoleAssignment
from tests.factories import GroupResourceFactory, UserFactory
from tests.lifecycle.assignment_helpers import package_giving


@pytest.fixture
def resource(db):
    return GroupResourceFactory()


@pytest.fixture
def package_and_policy(resource):
    return package_giving(resource, allowed_target_scope="allMemberUsers")


@pytest.fixture
def package(package_and_policy):
    return package_and_policy[0]


@pytest.fixture
def policy(package_and_policy):
    return package_and_policy[1]


@pytest.fixture
def owner(db, package):
    owner = UserFactory(email="owner@example.com", display_name="Olga Owner", is_staff=True)
    RoleAssignment.objects.create(
        role=AdminRole.CATALOG_OWNER, principal=owner, catalog=package.catalog
    )
    return owner


@pytest.fixture
def reader(db, package):
    """Sees the catalog but may not assign: the wrong person."""
    reader = UserFactory(email="reader@example.com", display_name="Rex Reader", is_staff=True)
    RoleAssignment.objects.create(
        role=AdminRole.CATALOG_READER, principal=reader, catalog=package.catalog
    )
    return reader


def people(count, prefix="person", **fields):
    return [
        UserFactory(email=f"{prefix}{i}@example.com", display_name=f"Person {prefix} {i}", **fields)
        for i in range(count)
    ]
