"""Question patterns cannot tie up a worker: unsafe ones are refused when saved, answers are
matched in linear time and capped in length, and requestors read the format in words."""

import time

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from entitlements.errors import InvalidRequest
from entitlements.models import AssignmentRequest, Question
from entitlements.services.requests import request_submit
from tests.factories import QuestionFactory
from tests.foundation.admin_support import admin_url, page_data
from tests.lifecycle.requests_setup import open_policy

pytestmark = pytest.mark.django_db
CATASTROPHIC = "(a|aa)+$"
ATTACK = "a" * 40 + "!"


def submit(requester, policy, answers):
    return request_submit(
        actor=requester, target=requester, access_package=policy.access_package, answers=answers
    )


def test_an_answer_to_a_catastrophic_pattern_already_saved_is_refused_within_a_second(
    requester,
):
    policy = open_policy()
    question = QuestionFactory(policy=policy, text="Code?", regex_pattern=CATASTROPHIC)

    started = time.monotonic()
    with pytest.raises(InvalidRequest, match="“Code\\?” is not in the expected format") as error:
        submit(requester, policy, {question.pk: ATTACK})

    assert time.monotonic() - started < 1
    assert error.value.field == f"answers.{question.pk}"
    assert not AssignmentRequest.objects.exists()


def test_an_answer_longer_than_the_cap_is_refused_with_a_clear_message(requester):
    policy = open_policy()
    question = QuestionFactory(policy=policy, text="Why?", is_single_line_question=False)

    with pytest.raises(InvalidRequest, match="longer than 4000 characters"):
        submit(requester, policy, {question.pk: "x" * (Question.MAX_ANSWER_LENGTH + 1)})

    assert not AssignmentRequest.objects.exists()
    assert submit(requester, policy, {question.pk: "x" * Question.MAX_ANSWER_LENGTH})


def test_a_mismatched_answer_is_told_the_format_in_words(requester):
    policy = open_policy()
    question = QuestionFactory(
        policy=policy,
        text="Ticket?",
        regex_pattern=r"[A-Z]{3}-\d{4}",
        format_hint="three capital letters, a dash and four digits (ABC-1234)",
    )

    with pytest.raises(InvalidRequest) as error:
        submit(requester, policy, {question.pk: "abc"})

    assert str(error.value) == (
        "The answer to “Ticket?” is not in the expected format: three capital letters, "
        "a dash and four digits (ABC-1234)."
    )
    assert r"\d" not in str(error.value)


@pytest.mark.parametrize(
    "pattern",
    [CATASTROPHIC, "(a+)+$", r"(\w+\s?)*$", "(.*a){12}", "(a|)+", r"(a)\1", "(?=a)a"],
)
def test_a_pattern_that_cannot_be_matched_safely_is_refused_when_the_question_is_saved(pattern):
    question = Question(text="Code?", regex_pattern=pattern, format_hint="a code")

    with pytest.raises(ValidationError) as error:
        question.clean()

    assert set(error.value.message_dict) == {"regex_pattern"}
    assert "cannot be used" in error.value.message_dict["regex_pattern"][0]


@pytest.mark.parametrize(
    "pattern",
    [r"[A-Z]{3}-\d{4}", r"PO-\d{6}", r"[a-z]+(\.[a-z]+)+", r"(\d+,)*\d+", "(foo|bar)+"],
)
def test_ordinary_patterns_are_accepted(pattern):
    Question(text="Code?", regex_pattern=pattern, format_hint="a code").clean()


def test_a_pattern_needs_the_format_in_words_for_requestors():
    with pytest.raises(ValidationError) as error:
        Question(text="Code?", regex_pattern=r"\d{4}").clean()

    assert set(error.value.message_dict) == {"format_hint"}


def test_the_admin_refuses_a_catastrophic_pattern_on_the_question_page(client, admin_user):
    policy = open_policy()
    client.force_login(admin_user)
    url = admin_url(Question, "add")
    data = page_data(client.get(url, {"policy": policy.pk}))
    data.update(text="Code?", regex_pattern=CATASTROPHIC, format_hint="letters a")

    response = client.post(url, data)

    assert response.status_code == 200
    assert "regex_pattern" in response.context["adminform"].form.errors
    assert not policy.questions.exists()


def test_the_request_page_shows_the_format_in_words_and_never_the_pattern(client, requester):
    policy = open_policy()
    QuestionFactory(
        policy=policy,
        text="Ticket?",
        regex_pattern=r"[A-Z]{3}-\d{4}",
        format_hint="three capital letters, a dash and four digits",
    )
    client.force_login(requester)

    page = client.get(reverse("myaccess:request_create", args=[policy.access_package.pk]))

    assert page.status_code == 200
    text = page.content.decode()
    assert "Expected format: three capital letters, a dash and four digits" in text
    assert "[A-Z]{3}" not in text
