"""Provisioning clients and the SCIM resources they provisioned.

A provisioning client is one identity provider or HR system (Entra ID, Okta, JumpCloud ...)
with its own bearer token, of which only the SHA-256 is stored. Each person or group it
provisioned has a link row holding the SCIM id the client knows it by (a UUID of our own,
not the directory's primary key), its userName and externalId, and the attributes of the
resource the directory has no column for. Deleting a resource ends its link, so the id
answers 404 afterwards, while the person stays in the directory, disabled, with their
history.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from directory.models import BaseModel


class ProvisioningClient(BaseModel):
    """A system allowed to provision people and groups over SCIM, with one bearer token."""

    name = models.CharField(_("name"), max_length=128, unique=True)
    active = models.BooleanField(
        _("active"), default=True, help_text=_("An inactive client's token is refused.")
    )
    match_existing = models.BooleanField(
        _("match existing people and groups"),
        default=False,
        help_text=_(
            "Take over people and groups the directory already has, by email / display name, "
            "when the client creates them; never administrators"
        ),
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(_("token hint"), max_length=8, editable=False)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True, editable=False)
    last_used = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
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
        ordering = ["name"]
        verbose_name = _("SCIM provisioning client")

    def __str__(self):
        return self.name

    def usable(self):
        return self.active and self.revoked_at is None


class ScimResource(BaseModel):
    """Abstract: what a provisioned person and a provisioned group have in common."""

    client = models.ForeignKey(
        ProvisioningClient, on_delete=models.PROTECT, related_name="+", verbose_name=_("client")
    )
    scim_id = models.UUIDField(_("SCIM id"), default=uuid.uuid4, unique=True, editable=False)
    external_id = models.CharField(_("external id"), max_length=256, blank=True)
    # The attributes the directory keeps no column for, as the client last wrote them.
    document = models.JSONField(default=dict, blank=True)
    deleted_at = models.DateTimeField(_("deleted"), null=True, blank=True)

    class Meta:
        abstract = True


class ScimUser(ScimResource):
    """One person a provisioning client provisioned, under the SCIM id it knows them by."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="scim_links",
        verbose_name=_("person"),
    )
    user_name = models.CharField(_("userName"), max_length=256)

    class Meta:
        verbose_name = _("SCIM user")
        constraints = [
            # A person is one live SCIM resource, and a userName names one (RFC 7643:
            # uniqueness "server", compared without case).
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(deleted_at__isnull=True),
                name="one_live_scim_user_per_person",
            ),
            models.UniqueConstraint(
                Lower("user_name"),
                condition=models.Q(deleted_at__isnull=True),
                name="unique_live_scim_user_name",
            ),
        ]
        indexes = [
            # A client's list of its users, in creation order (GET /Users pages).
            models.Index(fields=["client", "created", "id"], name="scimuser_client_created_idx"),
        ]

    def __str__(self):
        return self.user_name


class ScimGroup(ScimResource):
    """One group a provisioning client provisioned, under the SCIM id it knows it by."""

    group = models.ForeignKey(
        "directory.Group",
        on_delete=models.PROTECT,
        related_name="scim_links",
        verbose_name=_("group"),
    )

    class Meta:
        verbose_name = _("SCIM group")
        constraints = [
            models.UniqueConstraint(
                fields=["group"],
                condition=models.Q(deleted_at__isnull=True),
                name="one_live_scim_group_per_group",
            ),
        ]
        indexes = [
            models.Index(fields=["client", "created", "id"], name="scimgroup_client_created_idx"),
        ]

    def __str__(self):
        return str(self.scim_id)
