"""factory_boy factories for the configuration model; tests build on these."""

from datetime import timedelta

import factory

from directory.models import ConnectedOrganization, Group, GroupMembership, User
from entitlements.models import (
    AccessPackage,
    ApprovalStage,
    AssignmentPolicy,
    Catalog,
    OriginSystem,
    PolicySubjectSet,
    Question,
    Resource,
    ResourceRole,
    ResourceRoleScope,
    StageApproverSet,
    SubjectType,
)

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    display_name = factory.Sequence(lambda n: f"User {n}")
    department = "Engineering"
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):  # noqa: N805
        if create:
            obj.save()


class ConnectedOrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ConnectedOrganization

    display_name = factory.Sequence(lambda n: f"Partner {n}")
    domains = factory.LazyAttribute(lambda o: [o.display_name.lower().replace(" ", "") + ".com"])


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Group

    display_name = factory.Sequence(lambda n: f"Group {n}")


def add_member(group, user, role=GroupMembership.Role.MEMBER):
    return GroupMembership.objects.create(group=group, user=user, role=role)


class CatalogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Catalog

    display_name = factory.Sequence(lambda n: f"Catalog {n}")


class GroupResourceFactory(factory.django.DjangoModelFactory):
    """A directory group added to a catalog, with its Member and Owner roles."""

    class Meta:
        model = Resource
        skip_postgeneration_save = True

    catalog = factory.SubFactory(CatalogFactory)
    group = factory.SubFactory(GroupFactory)
    display_name = factory.LazyAttribute(lambda o: o.group.display_name)
    origin_system = OriginSystem.GROUP
    origin_id = factory.LazyAttribute(lambda o: str(o.group.id))

    @factory.post_generation
    def roles(obj, create, extracted, **kwargs):  # noqa: N805
        if create:
            for name in ("Member", "Owner"):
                ResourceRole.objects.create(resource=obj, display_name=name, origin_id=name)


class AccessPackageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AccessPackage

    catalog = factory.SubFactory(CatalogFactory)
    display_name = factory.Sequence(lambda n: f"Package {n}")
    description = "Access for the tests."


def grant_role(package, role):
    return ResourceRoleScope.objects.create(access_package=package, role=role)


class PolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AssignmentPolicy

    access_package = factory.SubFactory(AccessPackageFactory)
    display_name = "Employees"
    allowed_target_scope = "allMemberUsers"
    is_approval_required_for_add = False
    is_requestor_justification_required = False
    expiration_type = "afterDuration"
    expiration_duration = timedelta(days=30)


class ApprovalStageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApprovalStage

    policy = factory.SubFactory(PolicyFactory, is_approval_required_for_add=True)
    sequence = 1
    is_approver_justification_required = False


def add_approver(stage, subject_type=SubjectType.SINGLE_USER, purpose="primaryApprover", **kw):
    return StageApproverSet.objects.create(
        stage=stage, subject_type=subject_type, purpose=purpose, **kw
    )


def add_subject(policy, purpose, subject_type, **kw):
    return PolicySubjectSet.objects.create(
        policy=policy, purpose=purpose, subject_type=subject_type, **kw
    )


class QuestionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Question

    policy = factory.SubFactory(PolicyFactory)
    text = factory.Sequence(lambda n: f"Question {n}?")
