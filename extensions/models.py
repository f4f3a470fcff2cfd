"""Custom extensions: a catalog's external endpoints, the policies' stages that call them, and
the outbox of calls (Graph customCalloutExtension, customExtensionStageSetting,
customExtensionCalloutInstance)."""

import base64
import binascii
import ipaddress
import os
import re
import socket
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from directory.models import BaseModel
from entitlements.connectors.base import ConnectorRefused
from entitlements.extension import ExtensionStage
from entitlements.models import (
    AccessPackage,
    Assignment,
    AssignmentPolicy,
    AssignmentRequest,
    Catalog,
)
from entitlements.querysets import RestrictedQuerySet

# Entra lets a request wait for an extension's answer for at most 14 days.
MAX_WAIT = timedelta(days=14)
MIN_WAIT = timedelta(minutes=5)
# Secrets: only variables meant for them (never DATABASE_URL), and keys long enough to sign.
SECRET_VARIABLE_PREFIX = "CUSTOM_EXTENSION_"
SECRET_VARIABLE_NAME = re.compile(rf"{SECRET_VARIABLE_PREFIX}[A-Z0-9_]+")
MIN_SECRET_BYTES = 24


class Stage(models.TextChoices):
    REQUEST_CREATED = ExtensionStage.REQUEST_CREATED, _("Request is created")
    REQUEST_APPROVED = ExtensionStage.REQUEST_APPROVED, _("Request is approved")
    REQUEST_GRANTED = ExtensionStage.REQUEST_GRANTED, _("Assignment is granted")
    REQUEST_REMOVED = ExtensionStage.REQUEST_REMOVED, _("Assignment is removed")
    FOURTEEN_DAYS_BEFORE_EXPIRATION = (
        ExtensionStage.FOURTEEN_DAYS_BEFORE_EXPIRATION,
        _("Assignment is about to expire in 14 days"),
    )
    ONE_DAY_BEFORE_EXPIRATION = (
        ExtensionStage.ONE_DAY_BEFORE_EXPIRATION,
        _("Assignment is about to expire in 1 day"),
    )


# The stages at which a request can wait for the extension's answer (launch and wait).
WAITABLE_STAGES = [Stage.REQUEST_CREATED, Stage.REQUEST_APPROVED]


class Behavior(models.TextChoices):
    LAUNCH_AND_CONTINUE = "launchAndContinue", _("Launch and continue")
    LAUNCH_AND_WAIT = "launchAndWait", _("Launch and wait for the answer")


def allows_http():
    """Plain http endpoints only for local work: DEBUG, or the explicit setting (tests)."""
    return getattr(settings, "CUSTOM_EXTENSIONS_ALLOW_HTTP", settings.DEBUG)


def masked_url(url):
    """``url`` without what may carry a key: scheme://host/path?… (for lists and logs)."""
    try:
        parts = urlsplit(url or "")
    except ValueError:
        return ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}" + ("?…" if parts.query else "")


def allows_private_networks():
    return getattr(settings, "CUSTOM_EXTENSIONS_ALLOW_PRIVATE_NETWORKS", False)


def _not_public(address):
    address = ipaddress.ip_address(address.split("%", 1)[0])
    address = getattr(address, "ipv4_mapped", None) or address
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
        or not address.is_global  # shared (100.64/10), documentation ranges, ...
    )


def endpoint_address_problem(url):
    """Why ``url`` may not be called (its host is or resolves to a loopback, private,
    link-local or metadata address), or "". A name that does not resolve is no problem here:
    its call fails on its own. Checked when saving and again before each call."""
    if allows_private_networks():
        return ""
    try:
        parts = urlsplit(url or "")
        host, port = parts.hostname, parts.port or 443
    except ValueError:
        return ""
    if not host:
        return ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    except (OSError, UnicodeError):
        return ""
    if any(_not_public(address) for address in addresses):
        return str(PRIVATE_ADDRESS_REFUSED)
    return ""


PRIVATE_ADDRESS_REFUSED = _("refused: the endpoint resolves to a private address")


class CustomExtension(BaseModel):
    """An endpoint of a catalog that its policies call at stages of a request
    (customCalloutExtension / accessPackageAssignmentRequestWorkflowExtension)."""

    catalog = models.ForeignKey(Catalog, on_delete=models.PROTECT, related_name="custom_extensions")
    display_name = models.CharField(_("name"), max_length=256)
    description = models.TextField(_("description"), blank=True)
    endpoint_url = models.URLField(
        _("endpoint URL"),
        max_length=2000,
        help_text=_("Where the calls are POSTed; https (plain http only for local testing)."),
    )
    secret_reference = models.CharField(
        _("signing secret reference"),
        max_length=512,
        help_text=_(
            "The name of the environment variable (CUSTOM_EXTENSION_...), or the path of the "
            "file inside CUSTOM_EXTENSION_SECRETS_DIR, that holds the Standard Webhooks signing "
            "secret (whsec_...); never the secret itself."
        ),
    )
    timeout_seconds = models.PositiveIntegerField(
        _("timeout (seconds)"),
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(120)],
        help_text=_("How long one call may take before it counts as failed and is retried."),
    )
    behavior = models.CharField(
        _("behaviour"),
        max_length=24,
        choices=Behavior,
        default=Behavior.LAUNCH_AND_CONTINUE,
        help_text=_(
            "Launch and wait: at 'request is created' or 'request is approved' the request "
            "waits until the extension resumes it (or the maximum wait runs out: denied)."
        ),
    )
    max_wait = models.DurationField(
        _("maximum wait"),
        default=MAX_WAIT,
        help_text=_("Launch and wait only: how long the request waits; at most 14 days."),
    )

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["display_name"]
        verbose_name = _("custom extension")
        constraints = [
            models.UniqueConstraint(
                fields=["catalog", "display_name"], name="one_extension_name_per_catalog"
            )
        ]

    def __str__(self):
        return self.display_name

    @property
    def waits(self):
        return self.behavior == Behavior.LAUNCH_AND_WAIT

    def clean(self):
        errors = {}
        scheme = urlsplit(self.endpoint_url or "").scheme
        if scheme != "https" and not (scheme == "http" and allows_http()):
            errors["endpoint_url"] = _("The endpoint must be an https URL.")
        elif endpoint_address_problem(self.endpoint_url):
            errors["endpoint_url"] = _(
                "The endpoint resolves to a loopback, private, link-local or metadata "
                "address; custom extensions call only public addresses."
            )
        if self.max_wait is not None and not MIN_WAIT <= self.max_wait <= MAX_WAIT:
            errors["max_wait"] = _("The maximum wait is between 5 minutes and 14 days.")
        if self.secret_reference:
            problem = self.secret_problem()
            if problem:
                errors["secret_reference"] = problem
        if errors:
            raise ValidationError(errors)

    def secret(self):
        """The signing secret, read now from where ``secret_reference`` points: an environment
        variable named CUSTOM_EXTENSION_..., or a file inside CUSTOM_EXTENSION_SECRETS_DIR.
        Raises ConnectorRefused saying what is wrong; never whether a file outside exists."""
        reference = (self.secret_reference or "").strip()
        if os.sep in reference or reference.startswith((".", "~")):
            secret = _read_secret_file(reference)
        elif SECRET_VARIABLE_NAME.fullmatch(reference):
            if reference not in os.environ:
                raise ConnectorRefused(
                    _("The environment variable %(name)s is not set.") % {"name": reference}
                )
            secret = os.environ[reference]
        else:
            raise ConnectorRefused(
                _(
                    "Name an environment variable starting with %(prefix)s (capitals, digits "
                    "and _), or the path of a file inside CUSTOM_EXTENSION_SECRETS_DIR."
                )
                % {"prefix": SECRET_VARIABLE_PREFIX}
            )
        secret = secret.strip()
        encoded = secret.removeprefix("whsec_")
        try:
            key = base64.b64decode(encoded, validate=True) if encoded != secret else b""
        except (binascii.Error, ValueError):
            key = b""
        if len(key) < MIN_SECRET_BYTES:
            raise ConnectorRefused(
                _(
                    "The secret %(reference)s points to is not a Standard Webhooks secret: "
                    "whsec_ followed by the base64 of at least %(bytes)s random bytes."
                )
                % {"reference": reference, "bytes": MIN_SECRET_BYTES}
            )
        return secret

    def secret_problem(self):
        """Why the secret cannot be used, or "" (for the admin's form and each call)."""
        try:
            self.secret()
        except ConnectorRefused as exc:
            return str(exc)
        return ""


def _read_secret_file(reference):
    directory = getattr(settings, "CUSTOM_EXTENSION_SECRETS_DIR", "")
    if not directory:
        raise ConnectorRefused(
            _("Secret files are turned off: set CUSTOM_EXTENSION_SECRETS_DIR to their directory.")
        )
    root = Path(directory).resolve()
    # resolve() follows links, so a link inside the directory to a file outside is refused too
    path = Path(reference).expanduser().resolve()
    if not path.is_relative_to(root):
        raise ConnectorRefused(
            _("A secret file must be inside %(directory)s.") % {"directory": root}
        )
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeError):
        raise ConnectorRefused(
            _("The secret file %(path)s cannot be read.") % {"path": path}
        ) from None


class CustomExtensionStageSetting(BaseModel):
    """A policy calling one of its catalog's extensions at one stage
    (customExtensionStageSetting)."""

    policy = models.ForeignKey(
        AssignmentPolicy, on_delete=models.CASCADE, related_name="custom_extension_stage_settings"
    )
    stage = models.CharField(_("stage"), max_length=48, choices=Stage)
    custom_extension = models.ForeignKey(
        CustomExtension, on_delete=models.PROTECT, related_name="stage_settings"
    )

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        verbose_name = _("custom extension stage")
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "stage", "custom_extension"],
                name="one_extension_per_policy_stage",
            )
        ]
        indexes = [
            # the hooks: the extensions a policy calls at a stage
            models.Index(fields=["policy", "stage"], name="ext_setting_policy_stage_idx"),
        ]

    def __str__(self):
        return f"{self.get_stage_display()}: {self.custom_extension}"

    def clean(self):
        # The extension may be unsaved yet (added on its own page with this inline).
        field = CustomExtensionStageSetting._meta.get_field("custom_extension")
        extension = field.get_cached_value(self, default=None)
        extension = extension or (
            CustomExtension.objects.filter(pk=self.custom_extension_id).first()
            if self.custom_extension_id
            else None
        )
        if extension is None or not self.policy_id:
            return
        catalog_id = (
            AccessPackage.objects.filter(pk=self.policy.access_package_id)
            .values_list("catalog_id", flat=True)
            .first()
        )
        if extension.catalog_id != catalog_id:
            raise ValidationError(
                {
                    "custom_extension": _(
                        "%(name)s belongs to another catalog; a policy can call only the "
                        "extensions of its access package's catalog."
                    )
                    % {"name": extension.display_name}
                }
            )
        if extension.waits and self.stage not in WAITABLE_STAGES:
            raise ValidationError(
                {
                    "stage": _(
                        "%(name)s waits for an answer, which only the stages 'request is "
                        "created' and 'request is approved' can do."
                    )
                    % {"name": extension.display_name}
                }
            )


class CalloutState(models.TextChoices):
    # Ours: written, not yet accepted by the endpoint (retried with backoff).
    PENDING = "calloutPending", _("Waiting to be sent")
    CALLOUT_SENT = "calloutSent", _("Sent")
    WAITING_FOR_CALLBACK = "waitingForCallback", _("Waiting for the answer")
    CALLBACK_RECEIVED = "callbackReceived", _("Answer received")
    CALLOUT_FAILED = "calloutFailed", _("Failed")
    CALLBACK_TIMED_OUT = "callbackTimedOut", _("No answer in time")


# A launch-and-wait callout in one of these still holds its request.
WAITING_STATES = [CalloutState.PENDING, CalloutState.WAITING_FOR_CALLBACK]


class CustomExtensionCallout(BaseModel):
    """One call of one extension for one request or assignment at one stage: the outbox row
    (customExtensionCalloutInstance). Its id is the callout id (webhook-id)."""

    custom_extension = models.ForeignKey(
        CustomExtension, on_delete=models.PROTECT, related_name="callouts"
    )
    stage = models.CharField(_("stage"), max_length=48, choices=Stage)
    request = models.ForeignKey(
        AssignmentRequest,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="custom_extension_callouts",
    )
    assignment = models.ForeignKey(
        Assignment,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="custom_extension_callouts",
    )
    # One callout per extension, stage and request (or assignment): the hooks are idempotent.
    dedupe_key = models.CharField(max_length=200, unique=True)
    waits = models.BooleanField(_("request waits for the answer"), default=False)
    # The expiry stages: the end this callout warned of (an extended assignment is warned again).
    assignment_end = models.DateTimeField(_("assignment ends"), null=True, blank=True)
    state = models.CharField(
        _("state"), max_length=24, choices=CalloutState, default=CalloutState.PENDING
    )
    payload = models.JSONField(_("body"), default=dict)
    attempts = models.JSONField(
        _("attempts"),
        default=list,
        blank=True,
        help_text=_("Each call: when, HTTP status or error, and how long it took."),
    )
    attempt_count = models.PositiveIntegerField(_("number of attempts"), default=0)
    next_attempt_datetime = models.DateTimeField(_("next attempt"), null=True, blank=True)
    # A worker's claim while it POSTs with no transaction open.
    claimed_by = models.CharField(_("claimed by"), max_length=64, blank=True)
    lease_expires = models.DateTimeField(_("claim expires"), null=True, blank=True)
    sent_datetime = models.DateTimeField(_("sent"), null=True, blank=True)
    wait_until = models.DateTimeField(_("waits until"), null=True, blank=True)
    callback_datetime = models.DateTimeField(_("answered"), null=True, blank=True)
    callback_state = models.CharField(_("answer"), max_length=32, blank=True)
    callback_detail = models.TextField(_("answer detail"), blank=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]
        verbose_name = _("custom extension callout")
        indexes = [
            # the reconciler: callouts still to send, by due time
            models.Index(
                fields=["next_attempt_datetime"],
                condition=Q(state="calloutPending"),
                name="callout_pending_due_idx",
            ),
            # the timeout job: waiting callouts whose wait ran out
            models.Index(
                fields=["wait_until"],
                condition=Q(waits=True, state__in=["calloutPending", "waitingForCallback"]),
                name="callout_waiting_until_idx",
            ),
            # the admin's list: newest first, id breaking ties
            models.Index(fields=["-created", "-id"], name="callout_created_order_idx"),
            # a request's callouts (API, My Access timeline)
            models.Index(fields=["request", "stage"], name="callout_request_stage_idx"),
        ]

    def __str__(self):
        return f"{self.custom_extension} · {self.get_stage_display()} · {self.get_state_display()}"

    @property
    def is_waiting(self):
        return self.waits and self.state in WAITING_STATES
