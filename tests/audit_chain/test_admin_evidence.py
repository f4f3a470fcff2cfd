"""The admin's evidence export: superusers only, a period of whole days, the same file as
manage.py audit_export."""

import subprocess
import sys

import pytest
from django.urls import reverse

from entitlements.audit import audit_record
from entitlements.models import AuditEvent

from .test_chain import VERIFY_SCRIPT

pytestmark = pytest.mark.django_db(transaction=True)
URL = reverse("admin:entitlements_auditevent_evidence")


def test_a_superuser_downloads_evidence_the_stand_alone_script_verifies(
    client, admin_user, tmp_path
):
    for n in range(3):
        audit_record(action="test.recorded", obj=(AuditEvent, str(n)), actor=admin_user)
    client.force_login(admin_user)

    changelist = client.get(reverse("admin:entitlements_auditevent_changelist"))
    assert URL.encode() in changelist.content
    form = client.get(URL)
    assert form.status_code == 200
    assert b'type="date"' in form.content

    day = AuditEvent.objects.get(sequence=1).created.date()
    response = client.get(URL, {"start": day, "end": day})
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="audit-evidence-{day}-{day}.jsonl"'
    )
    path = tmp_path / "evidence.jsonl"
    path.write_bytes(b"".join(response.streaming_content))
    result = subprocess.run(
        [sys.executable, "-I", str(VERIFY_SCRIPT), str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout
    assert result.stdout.startswith("OK: 3 events (sequence 1..3)")


@pytest.mark.parametrize(
    "params, error",
    [
        ({"start": "2026-02-01", "end": "2026-01-01"}, b"The first day must not be after"),
        ({"start": "not a day", "end": "2026-01-01"}, b"Enter a valid date."),
        ({"start": "2026-01-01"}, b"This field is required."),
        ({"start": "2026-01-01", "end": "9999-12-31"}, b"Choose days from the year 1900 to 9998."),
        ({"start": "0001-01-01", "end": "0001-01-01"}, b"Choose days from the year 1900 to 9998."),
    ],
)
def test_a_bad_period_shows_the_form_again_with_the_reason(client, admin_user, params, error):
    client.force_login(admin_user)
    response = client.get(URL, params)
    assert response.status_code == 200
    assert error in response.content
    assert "Content-Disposition" not in response


def test_staff_who_are_not_superusers_are_refused(client, catalog_owner):
    client.force_login(catalog_owner)
    assert client.get(URL, {"start": "2026-01-01", "end": "2026-01-02"}).status_code == 403


def test_a_visitor_is_sent_to_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_the_evidence_download_is_get_only(client, admin_user):
    client.force_login(admin_user)
    response = client.post(URL, {"start": "2026-01-01", "end": "2026-01-02"})
    assert response.status_code == 405
    assert "Content-Disposition" not in response
