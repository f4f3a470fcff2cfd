"""Bad configurations are refused with a message naming the field, as functions and in the admin."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError

from entitlements import validation
from entitlements.models import (
    AccessPackage,
    ApprovalStage,
    AssignmentPolicy,
    PolicySubjectSet,
    Question,
    QuestionChoice,
    ResourceRoleScope,
    StageApproverSet,
    SubjectType,
)
from tests.factories import (
    AccessPackageFactory,
    ApprovalStageFactory,
    GroupResourceFactory,
    PolicyFactory,
    QuestionFactory,
    UserFactory,
    add_approver,
)
from tests.foundation.admin_support import add_row, admin_url, errors_of, page_data

Purpose = StageApproverSet.Purpose


def _approver(purpose, subject_type=SubjectType.SINGLE_USER):
    return StageApproverSet(purpose=purpose, subject_type=subject_type)


def _fields(excinfo):
    return set(excinfo.value.message_dict)


# --------------------------------------------------------------------------------------
# The checks as functions
# --------------------------------------------------------------------------------------


def test_it_refuses_a_fourth_approval_stage():
    policy = AssignmentPolicy(display_name="P")
    stages = [ApprovalStage(sequence=n) for n in (1, 2, 3, 3)]

    with pytest.raises(ValidationError) as excinfo:
        validation.check_stage_count(policy, stages=stages)

    assert _fields(excinfo) == {"policy"}
    validation.check_stage_count(policy, stages=stages[:3])


def test_it_refuses_a_stage_without_a_primary_approver():
    stage = ApprovalStage(sequence=1)

    with pytest.raises(ValidationError) as excinfo:
        validation.check_stage_approvers(stage, [_approver(Purpose.FALLBACK_PRIMARY)])

    assert _fields(excinfo) == {"approver_sets"}
    validation.check_stage_approvers(stage, [_approver(Purpose.PRIMARY)])


def test_it_refuses_escalation_without_escalation_approvers():
    stage = ApprovalStage(sequence=1, is_escalation_enabled=True)

    with pytest.raises(ValidationError) as excinfo:
        validation.check_stage_approvers(stage, [_approver(Purpose.PRIMARY)])

    assert _fields(excinfo) == {"is_escalation_enabled"}
    validation.check_stage_approvers(
        stage, [_approver(Purpose.PRIMARY), _approver(Purpose.ESCALATION)]
    )


def test_it_refuses_an_escalation_that_is_not_earlier_than_the_deadline():
    stage = ApprovalStage(
        sequence=1,
        is_escalation_enabled=True,
        duration_before_automatic_denial=timedelta(days=7),
        duration_before_escalation=timedelta(days=7),
    )

    with pytest.raises(ValidationError) as excinfo:
        stage.clean()

    assert _fields(excinfo) == {"duration_before_escalation"}


def test_it_refuses_a_role_of_another_catalogs_resource(db):
    package = AccessPackageFactory()
    own = GroupResourceFactory(catalog=package.catalog).roles.first()
    foreign = GroupResourceFactory().roles.first()

    with pytest.raises(ValidationError) as excinfo:
        validation.check_package_roles(package.catalog, [own, foreign])

    assert _fields(excinfo) == {"role"}
    assert str(foreign) in str(excinfo.value)
    validation.check_package_roles(package.catalog, [own])


def test_it_refuses_a_question_pattern_that_does_not_compile():
    question = Question(text="Cost centre?", regex_pattern="[A-Z{3")

    with pytest.raises(ValidationError) as excinfo:
        question.clean()

    assert _fields(excinfo) == {"regex_pattern"}


def test_it_refuses_a_multiple_choice_question_without_choices():
    question = Question(text="Which office?", question_type=Question.QuestionType.MULTIPLE_CHOICE)

    with pytest.raises(ValidationError) as excinfo:
        validation.check_question_choices(question, [])

    assert _fields(excinfo) == {"question_type"}
    validation.check_question_choices(question, [QuestionChoice(actual_value="paris")])
    validation.check_question_choices(Question(text="Why?"), [])


def test_it_refuses_access_that_lasts_zero():
    policy = AssignmentPolicy(expiration_type="afterDuration", expiration_duration=timedelta(0))

    with pytest.raises(ValidationError) as excinfo:
        policy.clean()

    assert _fields(excinfo) == {"expiration_duration"}


def test_it_refuses_a_policy_for_specific_users_that_names_nobody():
    policy = AssignmentPolicy(allowed_target_scope="specificDirectoryUsers")

    with pytest.raises(ValidationError) as excinfo:
        validation.check_policy_subjects(policy, [])

    assert _fields(excinfo) == {"allowed_target_scope"}
    validation.check_policy_subjects(
        policy, [PolicySubjectSet(purpose="allowedTarget", subject_type="singleUser")]
    )


def test_it_warns_about_a_manager_approver_without_a_fallback():
    stage = ApprovalStage(sequence=1)
    manager = _approver(Purpose.PRIMARY, SubjectType.REQUESTOR_MANAGER)

    warnings = validation.approver_warnings(stage, [manager])

    assert len(warnings) == 1 and "fallback approver" in warnings[0]
    assert validation.approver_warnings(stage, [manager, _approver(Purpose.FALLBACK_PRIMARY)]) == []


# --------------------------------------------------------------------------------------
# The same checks through the admin: the page shows the error and nothing is saved
# --------------------------------------------------------------------------------------


@pytest.fixture
def signed_in(client, admin_user):
    client.force_login(admin_user)
    return client


def _stage_page(client, policy):
    url = admin_url(ApprovalStage, "add")
    return url, page_data(client.get(url, {"policy": policy.pk}))


def test_the_admin_refuses_a_fourth_stage(signed_in):
    policy = PolicyFactory(is_approval_required_for_add=True)
    for n in (1, 2, 3):
        ApprovalStageFactory(policy=policy, sequence=n)
    url, data = _stage_page(signed_in, policy)
    add_row(
        data,
        "approver_sets",
        purpose="primaryApprover",
        subject_type="singleUser",
        user=UserFactory(),
    )

    response = signed_in.post(url, data)

    assert any("at most three" in e for e in response.context["adminform"].form.errors["policy"])
    assert policy.approval_stages.count() == 3


def test_the_admin_refuses_a_stage_without_approvers(signed_in):
    policy = PolicyFactory(is_approval_required_for_add=True)
    url, data = _stage_page(signed_in, policy)

    response = signed_in.post(url, data)

    assert any("has no approver" in e for e in errors_of(response))
    assert not policy.approval_stages.exists()


def test_the_admin_refuses_escalation_without_escalation_approvers(signed_in):
    policy = PolicyFactory(is_approval_required_for_add=True)
    url, data = _stage_page(signed_in, policy)
    data.update(is_escalation_enabled="on", duration_before_escalation="3 00:00:00")
    add_row(
        data,
        "approver_sets",
        purpose="primaryApprover",
        subject_type="singleUser",
        user=UserFactory(),
    )

    response = signed_in.post(url, data)

    assert any("no escalation approver" in e for e in errors_of(response))
    assert not policy.approval_stages.exists()


def test_the_admin_refuses_an_escalation_after_the_deadline(signed_in):
    policy = PolicyFactory(is_approval_required_for_add=True)
    url, data = _stage_page(signed_in, policy)
    data.update(
        is_escalation_enabled="on",
        duration_before_automatic_denial="7 00:00:00",
        duration_before_escalation="8 00:00:00",
    )
    add_row(
        data,
        "approver_sets",
        purpose="primaryApprover",
        subject_type="singleUser",
        user=UserFactory(),
    )
    add_row(
        data,
        "approver_sets",
        purpose="escalationApprover",
        subject_type="singleUser",
        user=UserFactory(),
    )

    response = signed_in.post(url, data)

    assert "duration_before_escalation" in response.context["adminform"].form.errors
    assert not policy.approval_stages.exists()


def test_the_admin_refuses_escalation_switched_on_from_the_policy_page(signed_in):
    stage = ApprovalStageFactory()
    add_approver(stage, user=UserFactory())
    url = admin_url(AssignmentPolicy, "change", stage.policy.pk)
    data = page_data(signed_in.get(url))
    data.update(
        {
            "approval_stages-0-is_escalation_enabled": "on",
            "approval_stages-0-duration_before_escalation": "2 00:00:00",
        }
    )

    response = signed_in.post(url, data)

    assert any("no escalation approver" in e for e in errors_of(response))
    stage.refresh_from_db()
    assert not stage.is_escalation_enabled


def test_the_admin_accepts_a_manager_approver_without_fallback_with_a_warning(signed_in):
    policy = PolicyFactory(is_approval_required_for_add=True)
    url, data = _stage_page(signed_in, policy)
    add_row(data, "approver_sets", purpose="primaryApprover", subject_type="requestorManager")

    response = signed_in.post(url, data)

    assert response.status_code == 302
    assert policy.approval_stages.get().approver_sets.get().manager_level == 1
    warnings = [m.message for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]
    assert len(warnings) == 1 and "manager" in warnings[0]


def test_the_admin_refuses_a_package_role_of_another_catalog(signed_in):
    package = AccessPackageFactory()
    foreign = GroupResourceFactory().roles.first()
    url = admin_url(AccessPackage, "change", package.pk)
    data = page_data(signed_in.get(url))
    add_row(data, "resource_role_scopes", role=foreign)

    response = signed_in.post(url, data)

    assert any("its own catalog" in e for e in errors_of(response))
    assert not ResourceRoleScope.objects.filter(access_package=package).exists()


def test_the_admin_refuses_a_package_role_of_another_catalog_when_adding_the_package(signed_in):
    own = GroupResourceFactory()
    foreign = GroupResourceFactory().roles.first()
    url = admin_url(AccessPackage, "add")
    data = page_data(signed_in.get(url))
    data.update(catalog=own.catalog.pk, display_name="New package")
    add_row(data, "resource_role_scopes", role=foreign)

    response = signed_in.post(url, data)

    assert any("its own catalog" in e for e in errors_of(response))
    assert not AccessPackage.objects.filter(display_name="New package").exists()


def test_the_admin_accepts_a_package_role_of_its_own_catalog(signed_in):
    package = AccessPackageFactory()
    own = GroupResourceFactory(catalog=package.catalog).roles.first()
    url = admin_url(AccessPackage, "change", package.pk)
    data = page_data(signed_in.get(url))
    add_row(data, "resource_role_scopes", role=own)

    assert signed_in.post(url, data).status_code == 302
    assert package.resource_role_scopes.get().role == own


def _question_page(client, policy, **fields):
    url = admin_url(Question, "add")
    data = page_data(client.get(url, {"policy": policy.pk}))
    data.update(fields)
    return url, data


def test_the_admin_refuses_a_question_pattern_that_does_not_compile(signed_in):
    policy = PolicyFactory()
    url, data = _question_page(signed_in, policy, text="Cost centre?", regex_pattern="(unclosed")

    response = signed_in.post(url, data)

    assert "regex_pattern" in response.context["adminform"].form.errors
    assert not policy.questions.exists()


def test_the_admin_refuses_a_multiple_choice_question_without_choices(signed_in):
    policy = PolicyFactory()
    url, data = _question_page(
        signed_in, policy, text="Which office?", question_type="multipleChoice"
    )

    response = signed_in.post(url, data)

    assert any("no choices" in e for e in errors_of(response))
    assert not policy.questions.exists()


def test_the_admin_accepts_a_multiple_choice_question_with_choices(signed_in):
    policy = PolicyFactory()
    url, data = _question_page(
        signed_in, policy, text="Which office?", question_type="multipleChoice"
    )
    add_row(data, "choices", sequence=1, actual_value="paris", text="Paris")

    assert signed_in.post(url, data).status_code == 302
    assert policy.questions.get().choices.get().actual_value == "paris"


def test_the_policy_page_refuses_turning_a_question_into_multiple_choice_without_choices(signed_in):
    question = QuestionFactory()
    url = admin_url(AssignmentPolicy, "change", question.policy.pk)
    data = page_data(signed_in.get(url))
    data["questions-0-question_type"] = "multipleChoice"

    response = signed_in.post(url, data)

    assert any("no choices" in e for e in errors_of(response))
    question.refresh_from_db()
    assert question.question_type == "textInput"


def test_the_admin_refuses_access_that_lasts_zero(signed_in):
    package = AccessPackageFactory()
    url = admin_url(AssignmentPolicy, "add")
    data = page_data(signed_in.get(url, {"access_package": package.pk}))
    data.update(display_name="Zero", expiration_type="afterDuration", expiration_duration="0")

    response = signed_in.post(url, data)

    assert "expiration_duration" in response.context["adminform"].form.errors
    assert not AssignmentPolicy.objects.filter(display_name="Zero").exists()


def test_the_admin_warns_when_a_policy_requires_approval_but_has_no_stage(signed_in):
    package = AccessPackageFactory()
    url = admin_url(AssignmentPolicy, "add")
    data = page_data(signed_in.get(url, {"access_package": package.pk}))
    data.update(display_name="Needs approval", is_approval_required_for_add="on")

    response = signed_in.post(url, data)

    assert response.status_code == 302
    warnings = [m.message for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]
    assert any("no approval stage" in w for w in warnings)
