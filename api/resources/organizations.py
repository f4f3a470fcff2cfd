"""``/identityGovernance/entitlementManagement/connectedOrganizations`` (connectedOrganization,
with its ``internalSponsors`` and ``externalSponsors``) and ``.../settings``
(entitlementManagementSettings).

Both are product-wide configuration, not rows of a catalog. Who may: ``may_administer``
below, the one rule for both: superusers, and applications granted
EntitlementManagement.ReadWrite.All, change them; anybody who may enter the admin (or an
application granted EntitlementManagement.Read.All) reads them, as in the admin. Every change
is audited through ``config_save`` / ``config_delete``.

A connected organization's identity sources are the email domains of its users:
``domainIdentitySource`` ``{domainName, displayName}`` only (its displayName is its domain
name, which is all the product keeps); tenants, federations and social providers are refused.
"""

import re

from django.core.exceptions import ValidationError
from rest_framework import serializers, viewsets
from rest_framework.decorators import action

from directory.admin import DOMAIN
from directory.models import ConnectedOrganization, EntitlementManagementSettings, User
from entitlements import permissions as entitlement_permissions
from entitlements.models import PolicySubjectSet, StageApproverSet

from ..graph.errors import bad_request, conflict, forbidden, not_found
from ..graph.schema import graph_schema
from ..graph.serializers import Expand, GraphSerializer, InputSerializer
from ..graph.views import BASE, GraphViewSet, api_root
from ..permissions import EM_READ, EM_READWRITE, ENTITLEMENTS_READ, ENTITLEMENTS_WRITE, granted
from .common import GraphDateTimeField, delete_config, save_config
from .policy_serializers import GraphDurationField


def _is_application(request):
    return getattr(request.auth, "kind", None) == "application"


def may_administer(request, *, write):
    """May the caller read (``write=False``) or change product-wide configuration?"""
    user = request.user
    if entitlement_permissions.is_superuser(user):
        return True
    if _is_application(request):
        accepted = {EM_READWRITE} if write else {EM_READ, EM_READWRITE}
        return bool(accepted & granted(request))
    return not write and entitlement_permissions.may_enter_admin(user)


def _save(user, obj, serializer_class, *, m2m=None):
    """Save through the audited service; a model check's message names Graph's property."""
    try:
        save_config(user, obj, m2m=m2m)
    except ValidationError as error:
        names = {field.source: name for name, field in serializer_class().fields.items()}
        detail = error.message_dict if hasattr(error, "error_dict") else {"": error.messages}
        raise bad_request(
            "; ".join(
                f"{names.get(key, key)}: {message}" if key and key != "__all__" else message
                for key, messages in detail.items()
                for message in messages
            )
        ) from None


def require_administer(request, what):
    if not may_administer(request, write=True):
        raise forbidden(f"Only an administrator may change {what}.")


# --------------------------------------------------------------------------------------
# Connected organizations
# --------------------------------------------------------------------------------------

DOMAIN_SOURCE = "#microsoft.graph.domainIdentitySource"


class DomainIdentitySourceSerializer(InputSerializer):
    domainName = serializers.CharField(max_length=253)
    displayName = serializers.CharField(required=False, allow_null=True, allow_blank=True)

    def get_fields(self):
        return {
            "@odata.type": serializers.CharField(source="odata_type", required=False),
            **super().get_fields(),
        }

    def to_internal_value(self, data):
        if isinstance(data, dict) and data.get("@odata.type") not in (None, DOMAIN_SOURCE):
            raise serializers.ValidationError(
                {
                    "@odata.type": f"{data.get('@odata.type')} identity sources are not "
                    f"supported: give the organization's email domains as {DOMAIN_SOURCE}."
                }
            )
        values = super().to_internal_value(data)
        domain = values["domainName"].strip().lower()
        if not DOMAIN.match(domain):
            raise serializers.ValidationError(
                {"domainName": f"'{domain[:64]}' is not a domain name like contoso.com."}
            )
        name = (values.get("displayName") or "").strip().lower()
        if name and name != domain:
            raise serializers.ValidationError(
                {
                    "displayName": "A domain source is named by its domain: give displayName "
                    f"'{domain}' or leave it out."
                }
            )
        return domain

    def to_representation(self, domain):
        return {"@odata.type": DOMAIN_SOURCE, "domainName": domain, "displayName": domain}


class SponsorUserSerializer(GraphSerializer):
    """A sponsor, as a directoryObject of type user."""

    odata_type = "#microsoft.graph.user"
    id = serializers.UUIDField(read_only=True)
    displayName = serializers.CharField(source="display_name", read_only=True)
    mail = serializers.EmailField(source="email", read_only=True)
    userPrincipalName = serializers.EmailField(source="email", read_only=True)


class ConnectedOrganizationSerializer(GraphSerializer):
    id = serializers.UUIDField(read_only=True)
    displayName = serializers.CharField(source="display_name", max_length=256)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    identitySources = DomainIdentitySourceSerializer(
        source="domains", many=True, required=False, default=list
    )
    state = serializers.ChoiceField(
        choices=ConnectedOrganization.State.choices,
        required=False,
        default=ConnectedOrganization.State.CONFIGURED,
    )
    createdDateTime = GraphDateTimeField(source="created", read_only=True)
    modifiedDateTime = GraphDateTimeField(source="modified", read_only=True)

    expandable = {
        name: Expand(SponsorUserSerializer, source=relation, many=True, prefetch=relation)
        for name, relation in (
            ("internalSponsors", "internal_sponsors"),
            ("externalSponsors", "external_sponsors"),
        )
    }

    def validate_domains(self, value):
        return list(dict.fromkeys(value))


class SponsorReferenceSerializer(InputSerializer):
    """``{"@odata.id": "https://host/v1.0/users/{id}"}``"""

    def get_fields(self):
        return {"@odata.id": serializers.CharField(source="odata_id")}


_USER_REF = re.compile(r"/(?:users|directoryObjects)/(?P<id>[0-9a-fA-F-]{36})/?$")
_SPONSORS = {"internalSponsors": "internal_sponsors", "externalSponsors": "external_sponsors"}


class ConnectedOrganizationViewSet(GraphViewSet):
    context = f"{BASE}/connectedOrganizations"
    serializer_class = ConnectedOrganizationSerializer
    read_permissions = ENTITLEMENTS_READ
    write_permissions = ENTITLEMENTS_WRITE
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    filter_fields = {
        "id": "id",
        "displayName": "display_name",
        "description": "description",
        "state": "state",
        "createdDateTime": "created",
        "modifiedDateTime": "modified",
    }
    default_order = ("display_name",)

    def visible(self):
        if not may_administer(self.request, write=False):
            return ConnectedOrganization.objects.none()
        return ConnectedOrganization.objects.all()

    def create(self, request):
        require_administer(request, "connected organizations")
        organization = ConnectedOrganization(**self.body())
        _save(request.user, organization, ConnectedOrganizationSerializer)
        return self.created(organization)

    def partial_update(self, request, pk=None):
        organization = self.get_object()
        require_administer(request, "connected organizations")
        for name, value in self.body(partial=True).items():
            setattr(organization, name, value)
        _save(request.user, organization, ConnectedOrganizationSerializer)
        return self.updated(organization)

    def destroy(self, request, pk=None):
        organization = self.get_object()
        require_administer(request, "connected organizations")
        used = (
            PolicySubjectSet.objects.filter(connected_organization=organization).exists()
            or StageApproverSet.objects.filter(connected_organization=organization).exists()
        )
        if used:
            raise conflict(
                f"Policies name {organization.display_name} (who may request, or approvers); "
                "change those policies first."
            )
        delete_config(request.user, organization)
        return self.no_content()

    # ---- sponsors -------------------------------------------------------------------

    def _sponsors(self, kind):
        organization = self.get_object()
        return organization, getattr(organization, _SPONSORS[kind])

    def _sponsor_list(self, request, pk, kind):
        organization, sponsors = self._sponsors(kind)
        return self.collection(
            sponsors.all(),
            serializer_class=SponsorUserSerializer,
            context=f"{BASE}/connectedOrganizations('{organization.pk}')/{kind}",
            filter_fields={"id": "id", "displayName": "display_name", "mail": "email"},
        )

    def _sponsor_add(self, request, pk, kind):
        organization, sponsors = self._sponsors(kind)
        require_administer(request, "connected organizations")
        reference = self.body(SponsorReferenceSerializer)["odata_id"]
        match = _USER_REF.search(reference)
        if not match:
            raise bad_request(
                f"@odata.id: give the user as {api_root(request)}/users/{{id}}.",
            )
        user = self.find(User.objects.all(), match["id"], what="user")
        current = list(sponsors.all())
        if user not in current:
            _save(
                request.user,
                organization,
                ConnectedOrganizationSerializer,
                m2m={_SPONSORS[kind]: [*current, user]},
            )
        return self.no_content()

    def _sponsor_remove(self, request, pk, sponsor_id, kind):
        organization, sponsors = self._sponsors(kind)
        require_administer(request, "connected organizations")
        current = list(sponsors.all())
        remaining = [user for user in current if str(user.pk) != str(sponsor_id).lower()]
        if len(remaining) == len(current):
            raise not_found(f"The user '{str(sponsor_id)[:64]}' is not one of its {kind}.")
        _save(
            request.user,
            organization,
            ConnectedOrganizationSerializer,
            m2m={_SPONSORS[kind]: remaining},
        )
        return self.no_content()

    @graph_schema(collection=SponsorUserSerializer)
    @action(detail=True, methods=["get"], url_path="internalSponsors")
    def internal_sponsors(self, request, pk=None):
        return self._sponsor_list(request, pk, "internalSponsors")

    @graph_schema(collection=SponsorUserSerializer)
    @action(detail=True, methods=["get"], url_path="externalSponsors")
    def external_sponsors(self, request, pk=None):
        return self._sponsor_list(request, pk, "externalSponsors")

    @graph_schema(request=SponsorReferenceSerializer)
    @action(detail=True, methods=["post"], url_path=r"internalSponsors/\$ref")
    def internal_sponsor_add(self, request, pk=None):
        return self._sponsor_add(request, pk, "internalSponsors")

    @graph_schema(request=SponsorReferenceSerializer)
    @action(detail=True, methods=["post"], url_path=r"externalSponsors/\$ref")
    def external_sponsor_add(self, request, pk=None):
        return self._sponsor_add(request, pk, "externalSponsors")

    @graph_schema()
    @action(
        detail=True,
        methods=["delete"],
        url_path=r"internalSponsors/(?P<sponsor_id>[^/()]+)/\$ref",
    )
    def internal_sponsor_remove(self, request, pk=None, sponsor_id=None):
        return self._sponsor_remove(request, pk, sponsor_id, "internalSponsors")

    @graph_schema()
    @action(
        detail=True,
        methods=["delete"],
        url_path=r"externalSponsors/(?P<sponsor_id>[^/()]+)/\$ref",
    )
    def external_sponsor_remove(self, request, pk=None, sponsor_id=None):
        return self._sponsor_remove(request, pk, sponsor_id, "externalSponsors")


# --------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------


class EntitlementManagementSettingsSerializer(GraphSerializer):
    externalUserLifecycleAction = serializers.ChoiceField(
        source="external_user_lifecycle_action",
        choices=EntitlementManagementSettings.ExternalUserLifecycleAction.choices,
        required=False,
    )
    durationUntilExternalUserDeletedAfterBlocked = GraphDurationField(
        source="duration_until_external_user_deleted_after_blocked", required=False
    )

    def to_representation(self, instance):
        return {"id": str(instance.pk), **super().to_representation(instance)}


class SettingsViewSet(viewsets.GenericViewSet):
    """``settings`` is a single object, not a collection: GET and PATCH on its own path.

    A plain viewset with GraphViewSet's entity and body helpers, and no list or retrieve,
    so the router adds no collection routes for it."""

    context = f"{BASE}/settings"
    serializer_class = EntitlementManagementSettingsSerializer
    read_permissions = ENTITLEMENTS_READ
    write_permissions = ENTITLEMENTS_WRITE
    entity = GraphViewSet.entity
    body = GraphViewSet.body
    query_options = GraphViewSet.query_options
    context_url = GraphViewSet.context_url
    options = GraphViewSet.options
    no_content = staticmethod(GraphViewSet.no_content)
    _reload = GraphViewSet._reload

    def get_queryset(self):
        return EntitlementManagementSettings.objects.none()

    @graph_schema(
        methods=["GET"],
        response=EntitlementManagementSettingsSerializer,
        operation_id="settings_get",
    )
    @graph_schema(
        methods=["PATCH"],
        request=EntitlementManagementSettingsSerializer,
        operation_id="settings_update",
    )
    @action(detail=False, methods=["get", "patch"], url_path="settings", url_name="settings")
    def entitlement_settings(self, request):
        if request.method == "GET":
            if not may_administer(request, write=False):
                raise forbidden("Only people who administer the product may read its settings.")
            return self.entity(EntitlementManagementSettings.current())
        require_administer(request, "the settings")
        current = EntitlementManagementSettings.current()
        for name, value in self.body(partial=True).items():
            setattr(current, name, value)
        _save(request.user, current, EntitlementManagementSettingsSerializer)
        return self.no_content()


def register(routers):
    router = routers["identityGovernance/entitlementManagement"]
    router.register(
        "connectedOrganizations", ConnectedOrganizationViewSet, basename="connectedorganization"
    )
    router.register("", SettingsViewSet, basename="entitlementmanagementsettings")
