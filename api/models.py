"""API credentials: registered applications, their client secrets, and access tokens.

Secrets and tokens are random values of at least 240 bits; only their SHA-256 is stored, so
a copy of the database gives no working credential. A value is shown once, when made.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from directory.models import BaseModel

from .permissions import APPLICATION_PERMISSIONS, DELEGATED_PERMISSIONS


def _check_permissions(values, allowed, what):
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValidationError({"permissions": _("Permissions must be a list of names.")})
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ValidationError(
            {
                "permissions": _("Not %(what)s: %(names)s.")
                % {"what": what, "names": ", ".join(unknown)}
            }
        )


class Application(BaseModel):
    """A service application that signs in with OAuth 2.0 client credentials (Entra's app
    registration); it acts as its service principal, a directory user of its own."""

    display_name = models.CharField(_("name"), max_length=256)
    client_id = models.CharField(
        _("application (client) id"), max_length=36, unique=True, editable=False
    )
    permissions = models.JSONField(
        _("application permissions"),
        default=list,
        blank=True,
        help_text=_("Graph application permissions its tokens carry."),
    )
    enabled = models.BooleanField(
        _("enabled"),
        default=True,
        help_text=_("A disabled application gets no token; its tokens stop working."),
    )
    service_principal = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("service principal"),
        on_delete=models.PROTECT,
        related_name="api_application",
        editable=False,
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    class Meta:
        ordering = ["display_name"]
        verbose_name = _("API application")

    def __str__(self):
        return self.display_name

    def clean(self):
        _check_permissions(self.permissions, APPLICATION_PERMISSIONS, "application permissions")


class ClientSecret(BaseModel):
    """One client secret of an application; only its SHA-256 is stored."""

    application = models.ForeignKey(
        Application, on_delete=models.CASCADE, related_name="secrets", verbose_name=_("application")
    )
    description = models.CharField(_("description"), max_length=256, blank=True)
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(_("hint"), max_length=3, editable=False)
    expires = models.DateTimeField(_("expires"))
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True, editable=False)
    last_used = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    class Meta:
        ordering = ["-created"]
        verbose_name = _("client secret")

    def __str__(self):
        return f"{self.hint}… ({self.description or self.application})"

    def usable(self, now=None):
        return self.revoked_at is None and self.expires > (now or timezone.now())


class AccessToken(BaseModel):
    """A bearer token: an application's (client credentials) or a person's (personal token,
    delegated permissions); only its SHA-256 is stored."""

    class Kind(models.TextChoices):
        APPLICATION = "application", _("Application")
        DELEGATED = "delegated", _("Personal (delegated)")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    # The identity the token acts as: an application's service principal, or the person.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("acts as"),
        on_delete=models.CASCADE,
        related_name="api_tokens",
    )
    application = models.ForeignKey(
        Application,
        verbose_name=_("application"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="tokens",
    )
    name = models.CharField(_("name"), max_length=128, blank=True)
    permissions = models.JSONField(_("permissions"), default=list)
    expires = models.DateTimeField(_("expires"))
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    last_used = models.DateTimeField(_("last used"), null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        verbose_name = _("access token")
        constraints = [
            models.CheckConstraint(
                name="application_token_names_its_application",
                condition=(
                    models.Q(kind="application", application__isnull=False)
                    | models.Q(kind="delegated", application__isnull=True)
                ),
            ),
        ]
        indexes = [
            # "my personal tokens" page: a person's tokens, newest first
            models.Index(fields=["user", "kind", "-created"], name="token_user_kind_created"),
        ]

    def __str__(self):
        return self.name or f"{self.get_kind_display()} token {str(self.pk)[:8]}"

    def clean(self):
        allowed = (
            APPLICATION_PERMISSIONS if self.kind == self.Kind.APPLICATION else DELEGATED_PERMISSIONS
        )
        _check_permissions(self.permissions, allowed, "permissions of this kind of token")

    def active(self, now=None):
        return self.revoked_at is None and self.expires > (now or timezone.now())
