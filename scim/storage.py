"""The directory as scim2-server's storage: SCIM Users and Groups over people and groups.

scim2-server's handler validates each request, applies PUT and PATCH to the stored
resource and evaluates ETags; it calls this storage to read, search, create, update and
delete. Reads render a resource from the link row (``ScimUser``/``ScimGroup``) and the
directory's row; writes go through ``identity.services`` (the joiner, mover and leaver
services every door uses) with ``Source(kind="scim", name=<client>)``, so every change is
audited with the system that caused it and re-evaluates the person's access.

A resource's attributes the directory has a column for are read from the directory (an
admin's change shows at the next GET); the others are kept in the link's ``document`` as
the client last wrote them. A mapped attribute is shown only while the client manages it,
so removing it with PATCH leaves the directory's value alone (a person keeps their name).
"""

import copy
import hashlib
import json
from datetime import UTC

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import F, Prefetch
from django.utils import timezone
from scim2_models import (
    InvalidValueException,
    Meta,
    NotFoundException,
    NotImplementedException,
    PreconditionFailedException,
    UniquenessException,
)
from scim2_server.storage import ScimStorage, SearchPage

from directory.models import Group, GroupMembership, User
from entitlements.audit import audit_record
from entitlements.errors import InvalidRequest
from identity.services import (
    Source,
    group_members_change,
    group_provision,
    group_update,
    user_disable,
    user_provision,
    user_update,
)

from .filters import GROUP_ATTRIBUTES, USER_ATTRIBUTES, filter_q
from .models import ScimGroup, ScimUser
from .provider import ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA

# A person provisioned without any email address gets one under the reserved .invalid
# domain (RFC 2606): they exist, can be given access and disabled, and receive no mail
# until the client sends an address.
PLACEHOLDER_DOMAIN = "scim.invalid"
# Attributes never kept: the password (write-only, never stored in clear), and what the
# server computes itself.
NOT_KEPT = ("id", "meta", "schemas", "password", "groups", "userName", "externalId")
# Enterprise attributes kept in the person's row: SCIM name -> User field.
ENTERPRISE_FIELDS = {
    "employeeNumber": "employee_id",
    "department": "department",
    "organization": "company_name",
}
CORE_FIELDS = {"displayName": "display_name", "title": "job_title"}


def _version(body):
    text = json.dumps(body, sort_keys=True, default=str)
    return 'W/"' + hashlib.sha256(text.encode()).hexdigest()[:20] + '"'


def _field_length(model, field):
    return model._meta.get_field(field).max_length


def _fits(value, model, field, attribute):
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidValueException(detail=f"{attribute} is a string.")
    length = _field_length(model, field)
    if length and len(value) > length:
        raise InvalidValueException(
            detail=f"{attribute} is longer than the {length} characters the directory keeps."
        )
    return value.strip()


def _primary(entries):
    """The primary entry of a multi-valued attribute, else its first one, else None."""
    entries = entries or []
    for entry in entries:
        if entry.get("primary"):
            return entry
    return entries[0] if entries else None


class DirectoryStorage(ScimStorage):
    """One provisioning client's view of the directory, for one request."""

    def __init__(self, *, service, client, now=None):
        self.service = service
        self.client = client
        self.now = now or timezone.now()

    def source(self, link=None):
        return Source(kind=Source.SCIM, name=self.client.name, id=str(link.scim_id) if link else "")

    def operation(self):
        return transaction.atomic()

    # -- reading ----------------------------------------------------------------------

    def _is_user(self, resource_type):
        return resource_type.name == "User"

    def _users(self):
        managers = ScimUser.objects.filter(client=self.client, deleted_at__isnull=True)
        return (
            ScimUser.objects.filter(client=self.client, deleted_at__isnull=True)
            .select_related("user", "user__manager")
            .prefetch_related(
                Prefetch("user__manager__scim_links", queryset=managers, to_attr="live_links")
            )
        )

    def _groups(self):
        members = (
            GroupMembership.objects.filter(
                role=GroupMembership.Role.MEMBER,
                user__scim_links__client=self.client,
                user__scim_links__deleted_at__isnull=True,
            )
            .annotate(
                member_scim_id=F("user__scim_links__scim_id"),
                member_name=F("user__display_name"),
            )
            .order_by("created", "id")
        )
        return (
            ScimGroup.objects.filter(client=self.client, deleted_at__isnull=True)
            .select_related("group")
            .prefetch_related(Prefetch("group__memberships", queryset=members, to_attr="scim"))
        )

    def _link(self, resource_type, resource_id, *, lock=False):
        queryset = self._users() if self._is_user(resource_type) else self._groups()
        if lock:
            # The link row is the lock: two writes of one resource take turns, and the
            # second one sees the version the first wrote.
            model = ScimUser if self._is_user(resource_type) else ScimGroup
            locked = model.objects.select_for_update().filter(
                client=self.client, deleted_at__isnull=True, scim_id=_uuid(resource_id)
            )
            if not locked.exists():
                raise self._not_found(resource_type, resource_id)
        link = queryset.filter(scim_id=_uuid(resource_id)).first()
        if link is None:
            raise self._not_found(resource_type, resource_id)
        return link

    @staticmethod
    def _not_found(resource_type, resource_id):
        return NotFoundException(detail=f"No {resource_type.name} has the id {resource_id}.")

    def _render(self, resource_type, link):
        body = self._user_body(link) if self._is_user(resource_type) else self._group_body(link)
        row = link.user if self._is_user(resource_type) else link.group
        modified = max(link.modified, row.modified)
        model = self.service.get_model(resource_type)
        resource = model.model_validate(body)
        resource.meta = Meta(
            resource_type=resource_type.name,
            created=link.created.astimezone(UTC),
            last_modified=modified.astimezone(UTC),
            version=_version(body),
        )
        return resource

    def _user_body(self, link):
        user = link.user
        doc = copy.deepcopy(link.document)
        body = {
            "schemas": [USER_SCHEMA],
            "id": str(link.scim_id),
            **doc,
            "userName": link.user_name,
        }
        if link.external_id:
            body["externalId"] = link.external_id
        for attribute, field in CORE_FIELDS.items():
            if attribute in doc:
                value = getattr(user, field)
                if value:
                    body[attribute] = value
                else:
                    body.pop(attribute)
        if "active" in doc:
            body["active"] = user.is_active
        primary = _primary(body.get("emails"))
        placeholder = user.email.endswith("@" + PLACEHOLDER_DOMAIN)
        # The directory's address wins once an admin changed it (a placeholder never shows).
        if (
            primary is not None
            and not placeholder
            and primary.get("value", "").lower() != user.email
        ):
            primary["value"] = user.email
        enterprise = body.pop(ENTERPRISE_SCHEMA, None) or {}
        for attribute, field in ENTERPRISE_FIELDS.items():
            if attribute in enterprise:
                value = getattr(user, field)
                if value:
                    enterprise[attribute] = value
                else:
                    enterprise.pop(attribute)
        if "manager" in enterprise:
            manager_links = getattr(user.manager, "live_links", []) if user.manager else []
            if manager_links:
                manager_id = str(manager_links[0].scim_id)
                enterprise["manager"] = {"value": manager_id, "$ref": f"Users/{manager_id}"}
            else:
                enterprise.pop("manager")
        if enterprise:
            body["schemas"] = [USER_SCHEMA, ENTERPRISE_SCHEMA]
            body[ENTERPRISE_SCHEMA] = enterprise
        return body

    def _group_body(self, link):
        group = link.group
        body = {"schemas": [GROUP_SCHEMA], "id": str(link.scim_id)}
        if link.external_id:
            body["externalId"] = link.external_id
        body["displayName"] = group.display_name
        members = {str(m.member_scim_id): m for m in group.scim}
        written = {
            entry["value"]: entry for entry in link.document.get("members", []) if "value" in entry
        }
        # Members in the order the client wrote them, then those added through other doors.
        order = [v for v in written if v in members] + [v for v in members if v not in written]
        entries = []
        for value in order:
            entry = {"value": value, "$ref": f"Users/{value}"}
            sent = written.get(value)
            if sent is None:
                entry.update(type="User", display=members[value].member_name)
            else:
                entry.update({k: sent[k] for k in ("type", "display") if k in sent})
            entries.append(entry)
        if entries or "members" in link.document:
            body["members"] = entries
        return body

    def get(self, resource_type, resource_id, *, response_parameters=None):
        return self._render(resource_type, self._link(resource_type, resource_id))

    def search(self, resource_types, search_request, *, position=None):
        names = [rt.name for rt in resource_types]
        if any(name not in ("User", "Group") for name in names):
            raise NotImplementedException(detail="Only Users and Groups are searched.")
        querysets = []
        for resource_type in resource_types:
            is_user = self._is_user(resource_type)
            condition = filter_q(
                search_request.filter,
                model=self.service.get_model(resource_type),
                attributes=USER_ATTRIBUTES if is_user else GROUP_ATTRIBUTES,
                core_schema=USER_SCHEMA if is_user else GROUP_SCHEMA,
                client=self.client,
            )
            queryset = (self._users() if is_user else self._groups()).filter(condition)
            # Every lookup is a column of the link, its row or a subquery: no join repeats a row.
            querysets.append((resource_type, queryset.order_by("created", "id")))
        # Several resource types (a search at the root) read as one list: Users, then Groups.
        totals = [queryset.count() for _, queryset in querysets]
        start = search_request.start_index_0 or 0
        remaining = search_request.count
        resources = []
        for (resource_type, queryset), total in zip(querysets, totals, strict=True):
            if start >= total:
                start -= total
                continue
            stop = total if remaining is None else min(total, start + remaining)
            page = list(queryset[start:stop])
            resources.extend(self._render(resource_type, link) for link in page)
            start = 0
            if remaining is not None:
                remaining -= len(page)
                if remaining <= 0:
                    break
        return SearchPage(total=sum(totals), resources=resources)

    # -- writing ----------------------------------------------------------------------

    def create(self, resource_type, resource):
        data = resource.model_dump()
        try:
            with transaction.atomic():
                if self._is_user(resource_type):
                    link = self._user_create(data)
                else:
                    link = self._group_create(data)
        except IntegrityError:
            # Another request took the same userName or person at the same moment.
            raise UniquenessException(detail="This resource exists already.") from None
        return self.get(resource_type, str(link.scim_id))

    def update(self, resource_type, resource, *, expected_version=None):
        current = self._link(resource_type, resource.id, lock=True)
        self._check_version(resource_type, current, expected_version)
        data = resource.model_dump()
        try:
            with transaction.atomic():
                if self._is_user(resource_type):
                    self._user_write(current, data)
                else:
                    self._group_write(current, data)
        except IntegrityError:
            raise UniquenessException(detail="This userName is taken.") from None
        return self.get(resource_type, resource.id)

    def delete(self, resource_type, resource_id, *, expected_version=None):
        link = self._link(resource_type, resource_id, lock=True)
        self._check_version(resource_type, link, expected_version)
        source = self.source(link)
        if self._is_user(resource_type):
            # A deleted user is disabled, not erased: their history and audit trail stay.
            self._call(
                user_disable,
                user=link.user,
                source=source,
                reason=f"Deleted by the SCIM client {self.client.name}.",
                now=self.now,
            )
            action = "scimUser.deleted"
        else:
            members = [m.user_id for m in link.group.scim]
            if members:
                self._call(
                    group_members_change,
                    group=link.group,
                    remove=members,
                    source=source,
                    now=self.now,
                )
            action = "scimGroup.deleted"
        type(link).objects.filter(pk=link.pk).update(deleted_at=self.now, modified=self.now)
        audit_record(
            action=action,
            obj=link,
            channel=source.channel,
            target=link.user_id if self._is_user(resource_type) else None,
            data=source.data(),
            now=self.now,
        )

    def _check_version(self, resource_type, link, expected_version):
        if expected_version is None:
            return
        if self._render(resource_type, link).meta.version != expected_version:
            raise PreconditionFailedException(
                detail="The resource changed since it was read (its ETag differs)."
            )

    @staticmethod
    def _call(service_function, *, taken=None, **arguments):
        """A directory service, its refusal as a SCIM error: 409 uniqueness when it refuses
        the field ``taken`` (someone else has it, e.g. a request racing this one), else 400
        invalidValue."""
        try:
            return service_function(**arguments)
        except InvalidRequest as exc:
            if taken is not None and exc.field == taken:
                raise UniquenessException(detail=str(exc)) from None
            raise InvalidValueException(detail=str(exc)) from None

    # -- users ------------------------------------------------------------------------

    def _user_name_taken(self, user_name, exclude=None):
        taken = ScimUser.objects.filter(deleted_at__isnull=True, user_name__iexact=user_name)
        if exclude is not None:
            taken = taken.exclude(pk=exclude.pk)
        return taken.exists()

    def _user_fields(self, data, link=None):
        """The person's fields the resource gives: (fields, active or None).

        An attribute the client stops sending (removed with PATCH, left out of a PUT) clears
        the field only if the client set it before; fields it never managed stay as other
        doors set them.
        """
        user = link.user if link is not None else None
        before = link.document if link is not None else {}
        before_enterprise = before.get(ENTERPRISE_SCHEMA) or {}
        fields = {}
        enterprise = data.get(ENTERPRISE_SCHEMA) or {}
        for attribute, field in CORE_FIELDS.items():
            if attribute in data:
                fields[field] = _fits(data[attribute], User, field, attribute)
            elif attribute in before and field != "display_name":
                fields[field] = ""
        for attribute, field in ENTERPRISE_FIELDS.items():
            if attribute in enterprise:
                fields[field] = _fits(enterprise[attribute], User, field, attribute)
            elif attribute in before_enterprise:
                fields[field] = ""
        if not fields.get("display_name"):
            fields.pop("display_name", None)
            if user is None:
                fields["display_name"] = _display_name(data)
        if "manager" in enterprise or "manager" in before_enterprise:
            fields["manager"] = self._manager(enterprise.get("manager"), user)
        primary = _primary(data.get("emails"))
        email = (primary or {}).get("value") or ""
        if not email and "@" in data["userName"]:
            email = data["userName"]
        if email:
            email = email.strip().lower()
            try:
                validate_email(email)
            except ValidationError:
                raise InvalidValueException(
                    detail=f"{email} is not an email address (emails.value)."
                ) from None
            fields["email"] = email
        elif user is None:
            fields["email"] = None  # a placeholder, once the SCIM id is known
        return fields, data.get("active")

    def _manager(self, manager, user):
        if not manager or not manager.get("value"):
            return None
        link = (
            ScimUser.objects.filter(
                client=self.client, deleted_at__isnull=True, scim_id=_uuid(manager["value"])
            )
            .select_related("user")
            .first()
        )
        if link is None:
            raise InvalidValueException(
                detail=f"No user has the id {manager['value']} (the manager's value)."
            )
        if user is not None and link.user_id == user.pk:
            raise InvalidValueException(detail="A person cannot be their own manager.")
        return link.user

    def _document(self, data):
        return {k: v for k, v in data.items() if k not in NOT_KEPT}

    def _user_create(self, data):
        user_name = data["userName"].strip()
        if self._user_name_taken(user_name):
            raise UniquenessException(detail=f"The userName {user_name} is taken.")
        fields, active = self._user_fields(data)
        link = ScimUser(
            client=self.client,
            user_name=user_name,
            external_id=data.get("externalId") or "",
            document=self._document(data),
            created=self.now,
        )
        source = self.source(link)
        if fields["email"] is None:
            fields["email"] = f"{link.scim_id}@{PLACEHOLDER_DOMAIN}"
        existing = User.objects.filter(email__iexact=fields["email"]).first()
        if existing is not None:
            self._user_take_over(existing, link, data, fields, active, source)
        else:
            link.user = self._call(
                user_provision, taken="email", attributes=fields, source=source, now=self.now
            )
            if active is False:
                self._call(user_disable, user=link.user, source=source, now=self.now)
        link.save(force_insert=True)
        audit_record(
            action="scimUser.created",
            obj=link,
            channel=source.channel,
            target=link.user,
            data=source.data(userName=user_name, externalId=link.external_id),
            now=self.now,
        )
        return link

    def _user_take_over(self, existing, link, data, fields, active, source):
        """Link ``existing``, whom the directory has already, to the new resource: someone this
        client provisioned and deleted before, or, if the client may match existing people,
        anyone but an administrator. Only the attributes the client sent change."""
        email = fields["email"]
        if ScimUser.objects.filter(user=existing, deleted_at__isnull=True).exists():
            raise UniquenessException(detail=f"A user with the email {email} exists already.")
        if existing.is_staff or existing.is_superuser:
            raise UniquenessException(
                detail=(
                    f"A user with the email {email} exists already: an administrator's account "
                    "cannot be taken over by provisioning."
                )
            )
        returning = ScimUser.objects.filter(user=existing, client=self.client).exists()
        if not returning and not self.client.match_existing:
            raise UniquenessException(
                detail=(
                    f"A user with the email {email} exists already and was not provisioned by "
                    f"{self.client.name}; an administrator may let this client match existing "
                    "people."
                )
            )
        changes = dict(fields)
        if "displayName" not in data and "name" not in data:
            changes.pop("display_name", None)  # derived from the userName: keep theirs
        if active is not None:
            changes["is_active"] = bool(active)
        elif returning:
            # Someone this client deleted (and so disabled) and provisions again comes back
            # enabled; a person taken over stays as enabled or disabled as other doors left them.
            changes["is_active"] = True
        self._call(
            user_update, taken="email", user=existing, changes=changes, source=source, now=self.now
        )
        link.user = existing
        if not returning:
            audit_record(
                action="user.linked",
                obj=existing,
                channel=source.channel,
                target=existing,
                data=source.data(userName=link.user_name, externalId=link.external_id),
                now=self.now,
            )

    def _user_write(self, link, data):
        user_name = data["userName"].strip()
        if user_name.lower() != link.user_name.lower() and self._user_name_taken(
            user_name, exclude=link
        ):
            raise UniquenessException(detail=f"The userName {user_name} is taken.")
        user = link.user
        fields, active = self._user_fields(data, link=link)
        if "email" in fields and fields["email"] != user.email:
            if user.is_staff or user.is_superuser:
                # A new address is a password reset away from the account.
                raise UniquenessException(
                    detail=(
                        "An administrator's email is changed in the admin: an administrator's "
                        "account cannot be taken over by provisioning."
                    )
                )
            other = User.objects.filter(email__iexact=fields["email"]).exclude(pk=user.pk)
            if other.exists():
                raise UniquenessException(
                    detail=f"A user with the email {fields['email']} exists already."
                )
        changes = dict(fields)
        if active is not None:
            changes["is_active"] = bool(active)
        self._call(
            user_update,
            taken="email",
            user=user,
            changes=changes,
            source=self.source(link),
            now=self.now,
        )
        link.user_name = user_name
        link.external_id = data.get("externalId") or ""
        link.document = self._document(data)
        link.modified = self.now
        link.save(update_fields=["user_name", "external_id", "document", "modified"])

    # -- groups -----------------------------------------------------------------------

    def _members(self, data):
        """The people a group resource names as members (SCIM ids of this client's users)."""
        values = [m.get("value") for m in data.get("members") or []]
        if any(not v for v in values):
            raise InvalidValueException(detail="Each member needs a value (a user's id).")
        ids = {_uuid(v) for v in values}
        links = dict(
            ScimUser.objects.filter(
                client=self.client, deleted_at__isnull=True, scim_id__in=ids - {None}
            ).values_list("scim_id", "user_id")
        )
        unknown = [v for v in values if _uuid(v) not in links]
        if unknown:
            raise InvalidValueException(
                detail=f"No user has the id {unknown[0]} (groups hold users only)."
            )
        return {links[_uuid(v)] for v in values}

    def _group_document(self, data):
        document = self._document(data)
        document.pop("displayName", None)
        if "members" in document:
            document["members"] = [
                {k: m[k] for k in ("value", "type", "display") if k in m}
                for m in document["members"]
            ]
        return document

    def _group_create(self, data):
        name = _fits(data["displayName"], Group, "display_name", "displayName")
        if not name:
            raise InvalidValueException(detail="A group needs a displayName.")
        members = self._members(data)
        link = ScimGroup(
            client=self.client,
            external_id=data.get("externalId") or "",
            document=self._group_document(data),
            created=self.now,
        )
        source = self.source(link)
        existing = Group.objects.filter(display_name=name).first()
        if existing is not None:
            if ScimGroup.objects.filter(group=existing, deleted_at__isnull=True).exists():
                raise UniquenessException(detail=f"A group named {name} exists already.")
            returning = ScimGroup.objects.filter(group=existing, client=self.client).exists()
            if not returning and not self.client.match_existing:
                raise UniquenessException(
                    detail=(
                        f"A group named {name} exists already and was not provisioned by "
                        f"{self.client.name}; an administrator may let this client match "
                        "existing groups."
                    )
                )
            link.group = existing
            if not returning:
                audit_record(
                    action="group.linked",
                    obj=existing,
                    channel=source.channel,
                    data=source.data(displayName=name, externalId=link.external_id),
                    now=self.now,
                )
        else:
            link.group = self._call(
                group_provision,
                taken="display_name",
                attributes={"display_name": name},
                source=source,
                now=self.now,
            )
        if members:
            self._call(
                group_members_change, group=link.group, add=members, source=source, now=self.now
            )
        link.save(force_insert=True)
        audit_record(
            action="scimGroup.created",
            obj=link,
            channel=source.channel,
            data=source.data(displayName=name, externalId=link.external_id),
            now=self.now,
        )
        return link

    def _group_write(self, link, data):
        name = _fits(data["displayName"], Group, "display_name", "displayName")
        if not name:
            raise InvalidValueException(detail="A group needs a displayName.")
        source = self.source(link)
        if name != link.group.display_name:
            if Group.objects.filter(display_name=name).exclude(pk=link.group_id).exists():
                raise UniquenessException(detail=f"A group named {name} exists already.")
            self._call(
                group_update,
                taken="display_name",
                group=link.group,
                changes={"display_name": name},
                source=source,
                now=self.now,
            )
        wanted = self._members(data)
        present = {m.user_id for m in link.group.scim}
        if wanted != present:
            self._call(
                group_members_change,
                group=link.group,
                add=wanted - present,
                remove=present - wanted,
                source=source,
                now=self.now,
            )
        link.external_id = data.get("externalId") or ""
        link.document = self._group_document(data)
        link.modified = self.now
        link.save(update_fields=["external_id", "document", "modified"])


def _display_name(data):
    name = data.get("name") or {}
    given = " ".join(p for p in (name.get("givenName"), name.get("familyName")) if p)
    text = name.get("formatted") or given or data["userName"].split("@")[0]
    return text[: _field_length(User, "display_name")]


def _uuid(value):
    import uuid

    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
