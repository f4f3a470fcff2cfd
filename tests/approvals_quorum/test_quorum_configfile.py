"""Configuration as code keeps a stage's quorum and shortening settings: exported, applied,
and a nonsense quorum refused with its place in the file, nothing changed."""

import pytest
import yaml
from django.core.management import CommandError

from entitlements.models import ApprovalStage, AuditEvent, QuorumMode
from tests.configfile.test_config_as_code import apply, export, package, write

pytestmark = pytest.mark.django_db

PACKAGE = "Production access"


@pytest.fixture
def demo():
    from demo.organisation import seed_organisation

    seed_organisation()


def first_stage(doc):
    return package(doc, PACKAGE)["policies"][0]["stages"][0]


def test_a_quorum_stage_is_exported_and_applied_back_unchanged(demo, tmp_path):
    stage = ApprovalStage.objects.filter(policy__access_package__display_name=PACKAGE).first()
    stage.quorum_mode, stage.quorum_count = QuorumMode.SOME_OF, 1
    stage.approvers_may_shorten = True
    stage.save()

    text = export()
    doc = yaml.safe_load(text)

    assert (first_stage(doc)["quorumMode"], first_stage(doc)["quorumCount"]) == ("someOf", 1)
    assert first_stage(doc)["approversMayShorten"] is True
    assert "No changes" in apply(write(tmp_path, doc), "--yes")


def test_the_file_turns_a_stage_into_a_quorum_stage(demo, tmp_path):
    doc = yaml.safe_load(export())
    first_stage(doc).update(quorumMode="someOf", quorumCount=1, approversMayShorten=True)

    apply(write(tmp_path, doc), "--yes")

    stage = ApprovalStage.objects.filter(
        policy__access_package__display_name=PACKAGE, sequence=1
    ).first()
    assert (stage.quorum_mode, stage.quorum_count, stage.approvers_may_shorten) == (
        QuorumMode.SOME_OF,
        1,
        True,
    )


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"quorumMode": "someOf", "quorumCount": 50}, "quorumCount: Stage 1 needs 50 approvals"),
        ({"quorumMode": "someOf", "quorumCount": 0}, "quorumCount"),
        ({"quorumMode": "everyone"}, "quorumMode: 'everyone' is not one of"),
    ],
)
def test_a_nonsense_quorum_in_the_file_names_its_place_and_nothing_changes(
    demo, tmp_path, change, words
):
    doc = yaml.safe_load(export())
    first_stage(doc).update(change)
    before, events = export(), AuditEvent.objects.count()

    with pytest.raises(CommandError) as error:
        apply(write(tmp_path, doc), "--yes")

    assert words in str(error.value)
    assert export() == before
    assert AuditEvent.objects.count() == events
