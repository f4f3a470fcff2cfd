"""The Access reviews tab writes its deadlines with one full stop, also after "a.m."."""

import html
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils.html import strip_tags

from reviews.services import review_instance_create
from tests.factories import UserFactory

from .conftest import START, open_assignments

pytestmark = pytest.mark.django_db


def test_a_review_ending_in_the_morning_reads_with_one_full_stop(
    client, settings, policy, reviewer
):
    settings.TIME_ZONE = "UTC"
    open_assignments(policy, [UserFactory(display_name="Ann Active")])
    end = START + timedelta(days=14, hours=7, minutes=47)
    review_instance_create(policy=policy, start=START, end=end, now=START)
    client.force_login(reviewer)

    with time_machine.travel(START + timedelta(days=3), tick=False):
        page = client.get(reverse("reviews:list")).content.decode()

    text = " ".join(html.unescape(strip_tags(page)).split())
    assert "ends Jan. 15, 2025, 7:47 a.m. " in text
    assert "a.m.." not in text
