"""A custom extension calls only public addresses: an endpoint on a loopback, private,
link-local or metadata address is refused when saved and again before each call, unless
CUSTOM_EXTENSIONS_ALLOW_PRIVATE_NETWORKS says otherwise (local testing)."""

import pytest
from django.core.exceptions import ValidationError

from entitlements.services.requests import request_submit
from extensions.models import CalloutState, CustomExtensionCallout, Stage
from tests.extensions.helpers import attach_extension
from tests.lifecycle.requests_setup import open_policy

pytestmark = pytest.mark.django_db


@pytest.fixture
def extension(signing_secret, settings):
    settings.CUSTOM_EXTENSIONS_ALLOW_PRIVATE_NETWORKS = False
    return attach_extension(open_policy(), Stage.REQUEST_GRANTED, url="https://93.184.216.34/")


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1:5432/",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost/admin/",
        "https://10.1.2.3/hook",
        "https://192.168.0.1/hook",
        "https://100.64.0.1/hook",
        "https://0.0.0.0/hook",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[fe80::1]/hook",
    ],
)
def test_an_endpoint_on_a_private_address_is_refused_when_saved(extension, url):
    extension.endpoint_url = url

    with pytest.raises(ValidationError) as raised:
        extension.full_clean()

    assert "private" in " ".join(raised.value.message_dict["endpoint_url"])


def test_an_endpoint_on_a_public_address_is_accepted(extension):
    extension.full_clean()


def test_a_private_endpoint_is_accepted_when_private_networks_are_allowed(extension, settings):
    settings.CUSTOM_EXTENSIONS_ALLOW_PRIVATE_NETWORKS = True
    extension.endpoint_url = "https://127.0.0.1:8443/hook"

    extension.full_clean()


def test_a_call_to_a_private_address_is_refused_before_it_is_made(
    requester, receiver, settings, django_capture_on_commit_callbacks
):
    policy = open_policy()
    attach_extension(policy, Stage.REQUEST_GRANTED, url=receiver.url)
    settings.CUSTOM_EXTENSIONS_ALLOW_PRIVATE_NETWORKS = False  # saved before; refused at send

    with django_capture_on_commit_callbacks(execute=True):
        request_submit(actor=requester, target=requester, access_package=policy.access_package)

    callout = CustomExtensionCallout.objects.get()
    assert callout.state == CalloutState.PENDING
    assert callout.attempts[0]["error"] == "refused: the endpoint resolves to a private address"
    assert receiver.calls == []
