"""SCIM 2.0 applications (RFC 7643/7644) through ``scim2-client`` and ``scim2-models``.

A resource of a SCIM system is one of the application's Groups (``origin_id``: the Group's
``id``; its role Member), or the application itself, whose roles are either Groups (a role's
``origin_id`` is a Group ``id``) or values of a user attribute (``role_mapping``). The
application's user is found by ``userName`` or ``emails`` and created when missing.

Settings (``ConnectedSystem.settings``; the token or password comes from the secret
reference, never from here)::

    {"url": "https://app.example.com/scim/v2",
     "auth": "bearer",                   # or "basic" with "username"
     "user_match": "userName",           # or "emails"
     "user_attributes": ["userName", "displayName", "emails", "name", "active", "externalId"],
     "role_mapping": "groups",           # or {"attribute": "roles"} (multi-valued) or
                                         # {"attribute": "urn:...:User:costCenter",
                                         #  "multi_valued": false}
     "timeout": 10, "verify_tls": true,  # or the path of a CA bundle
     "page_size": 100, "max_members_per_patch": 500}

Errors: a network error, a timeout or a 5xx is a retryable ``ConnectorError``; a 429 too, with
``retry_after`` from its ``Retry-After`` header; any other 4xx is ``ConnectorRefused`` with the
application's ``detail``.
"""

import base64
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from django.utils.translation import gettext as _
from scim2_client import (
    BaseSyncSCIMClient,
    RequestNetworkException,
    SCIMClientException,
)
from scim2_models import (
    Email,
    EnterpriseUser,
    Group,
    GroupMember,
    Name,
    PatchOp,
    PatchOperation,
    ResourceType,
    SCIMException,
    ScimProvider,
    SearchRequest,
    ServiceProviderConfig,
    User,
)

from directory.models import GroupMembership

from .base import Connector, ConnectorError, ConnectorRefused, ConnectorTimeout, DiscoveredGroup

USER_ATTRIBUTES = ("userName", "displayName", "emails", "name", "active", "externalId")
MULTI_VALUED_ROLE_ATTRIBUTES = ("roles", "entitlements")
# Filters OR-ing many values are cut into requests of this many values.
FILTER_CHUNK = 50
# Above this many members, holders lists every user (paged) instead of looking ids up.
LOOKUP_LIMIT = 200

_PROVIDER = ScimProvider(
    models=[User, EnterpriseUser, Group],
    resource_types=[
        ResourceType.from_resource(User[EnterpriseUser]),
        ResourceType.from_resource(Group),
    ],
)
ScimUser = _PROVIDER.model_for("User")


@dataclass(frozen=True)
class ScimSettings:
    """A SCIM system's settings, checked."""

    url: str
    auth: str = "bearer"
    username: str = ""
    user_match: str = "userName"
    user_attributes: tuple = USER_ATTRIBUTES
    role_attribute: str = ""  # "" when roles are groups
    multi_valued: bool = True
    verify_tls: object = True
    page_size: int = 100
    max_members_per_patch: int = 500

    @classmethod
    def parse(cls, settings, system):
        def refuse(problem):
            raise ConnectorRefused(
                _("The settings of %(system)s are not usable: %(problem)s")
                % {"system": system, "problem": problem}
            )

        url = str(settings.get("url") or "").rstrip("/")
        if not url.startswith(("https://", "http://")):
            refuse(_("“url” must be the http(s) address of the SCIM endpoints."))
        auth = settings.get("auth", "bearer")
        if auth not in ("bearer", "basic"):
            refuse(_("“auth” must be “bearer” or “basic”."))
        username = str(settings.get("username") or "")
        if auth == "basic" and not username:
            refuse(_("basic authentication needs a “username”."))
        user_match = settings.get("user_match", "userName")
        if user_match not in ("userName", "emails"):
            refuse(_("“user_match” must be “userName” or “emails”."))
        attributes = settings.get("user_attributes", list(USER_ATTRIBUTES))
        unknown = sorted(set(attributes or ()) - set(USER_ATTRIBUTES))
        if not isinstance(attributes, list) or unknown:
            refuse(
                _("“user_attributes” may list only %(known)s.")
                % {"known": ", ".join(USER_ATTRIBUTES)}
            )
        mapping = settings.get("role_mapping", "groups")
        role_attribute, multi_valued = "", True
        if isinstance(mapping, dict) and str(mapping.get("attribute") or "").strip():
            role_attribute = mapping["attribute"].strip()
            multi_valued = bool(
                mapping.get("multi_valued", role_attribute in MULTI_VALUED_ROLE_ATTRIBUTES)
            )
        elif mapping != "groups":
            refuse(_("“role_mapping” must be “groups” or {“attribute”: “roles”}."))
        verify = settings.get("verify_tls", True)
        if not isinstance(verify, bool | str):
            refuse(_("“verify_tls” must be true, false or the path of a CA bundle."))
        numbers = {}
        for name, default in (("page_size", 100), ("max_members_per_patch", 500)):
            value = settings.get(name, default)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                refuse(_("“%(name)s” must be a positive whole number.") % {"name": name})
            numbers[name] = value
        return cls(
            url=url,
            auth=auth,
            username=username,
            user_match=user_match,
            user_attributes=tuple(attributes),
            role_attribute=role_attribute,
            multi_valued=multi_valued,
            verify_tls=verify,
            **numbers,
        )


class _Client(BaseSyncSCIMClient):
    """scim2-client's synchronous client over an ``httpx.Client`` (its own httpx engine
    needs the httpx2 package; this is the same few lines over httpx)."""

    def __init__(self, http, **kwargs):
        super().__init__(**kwargs)
        self.http = http

    def _parse_json(self, response):
        return response.json()

    def request(self, method, url, **kwargs):
        try:
            return self.http.request(method, url, **kwargs)
        except httpx.RequestError as exc:
            error = RequestNetworkException()
            error.add_note(str(exc))
            raise error from exc


class _SecretAuth(httpx.Auth):
    """Reads the credential for every request, so a rotated secret needs no restart."""

    def __init__(self, connector):
        self.connector = connector

    def auth_flow(self, request):
        config, secret = self.connector.config, self.connector.secret()
        if config.auth == "basic":
            pair = f"{config.username}:{secret}".encode()
            request.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        elif secret:
            request.headers["Authorization"] = f"Bearer {secret}"
        yield request


def _quoted(value):
    """A SCIM filter string literal (RFC 7644 §3.4.2.2: a JSON string)."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _retry_after(response):
    """Seconds from a ``Retry-After`` header (delay-seconds or an HTTP date), or None."""
    value = (response.headers.get("Retry-After") or "").strip() if response is not None else ""
    if not value:
        return None
    if value.isdigit():
        return int(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0, round((when - datetime.now(UTC)).total_seconds()))


class ScimConnector(Connector):
    """Grants and revokes roles in a SCIM 2.0 application: group members or a user attribute."""

    def __init__(self, system=None):
        super().__init__(system)
        self._config, self._config_error = None, None
        try:
            self._config = ScimSettings.parse(self.settings, system)
        except ConnectorRefused as exc:
            self._config_error = exc
        self._client = None
        self._sorting = None  # whether the application sorts, once asked
        self._lock = threading.Lock()

    @property
    def config(self):
        if self._config_error is not None:
            raise self._config_error
        return self._config

    @property
    def client(self):
        with self._lock:
            if self._client is None:
                config = self.config
                http = httpx.Client(
                    base_url=config.url,
                    auth=_SecretAuth(self),
                    timeout=self.timeout,
                    verify=config.verify_tls,
                    headers={"Accept": "application/scim+json, application/json"},
                )
                self._client = _Client(http, provider=_PROVIDER)
            return self._client

    # --- the interface ------------------------------------------------------------------

    def grant(self, role, user):
        self.grant_many(role, [user])

    def grant_many(self, role, users):
        if not users:
            return
        ids = self._ensure_users(users)
        if self.config.role_attribute:
            for scim_id in ids.values():
                self._set_attribute(scim_id, role, add=True)
            return
        self._add_members(self._group_id(role), sorted(set(ids.values())))

    def revoke(self, role, user):
        self.revoke_many(role, [user])

    def revoke_many(self, role, users):
        found = self._find_users(users)
        if not found:
            return  # not in the application: nothing to take away
        if self.config.role_attribute:
            for resource in found.values():
                self._set_attribute(resource.id, role, add=False)
            return
        self._remove_members(self._group_id(role), sorted({r.id for r in found.values()}))

    def holders(self, role):
        return set(self._holders_by_id(role).values())

    def revoke_keys(self, role, keys):
        keys = {str(k).lower() for k in keys}
        ids = sorted(pk for pk, key in self._holders_by_id(role).items() if key in keys)
        if not ids:
            return
        if self.config.role_attribute:
            for scim_id in ids:
                self._set_attribute(scim_id, role, add=False)
            return
        self._remove_members(self._group_id(role), ids)

    def test_connection(self):
        with self._answers(_("reading its service provider configuration")):
            config = self.client.query(ServiceProviderConfig)
        with self._answers(_("counting its users and groups")):
            users = self.client.query(ScimUser, query_parameters=SearchRequest(count=0))
            groups = self.client.query(Group, query_parameters=SearchRequest(count=0))
        patch = bool(config.patch and config.patch.supported)
        sentence = _(
            "Connected to %(url)s: %(users)s users and %(groups)s groups; PATCH is %(patch)s."
        ) % {
            "url": self.config.url,
            "users": users.total_results or 0,
            "groups": groups.total_results or 0,
            "patch": _("supported") if patch else _("not supported (group changes will fail)"),
        }
        return sentence

    def search_groups(self, query="", cursor=None, limit=50):
        """Groups whose displayName contains ``query``, or whose id it is (the admin finds a
        group again by the id it posted). ``cursor``: the startIndex of the page; a cursor
        that is not one raises ValueError."""
        start = int(cursor or 1)
        if start < 1:
            raise ValueError(cursor)
        filter_ = f"displayName co {_quoted(query)} or id eq {_quoted(query)}" if query else None
        search = SearchRequest(
            filter=filter_,
            sort_by="displayName" if self._sorts() else None,
            attributes=["displayName", "externalId"],
            start_index=start,
            count=max(1, min(int(limit), 1000)),
        )
        with self._answers(_("searching its groups")):
            page = self.client.query(Group, query_parameters=search)
        found = [
            DiscoveredGroup(origin_id=g.id, display_name=g.display_name or g.id, has_owners=False)
            for g in page.resources or []
        ]
        total = page.total_results or 0
        more = found and start - 1 + len(found) < total
        return found, (str(start + len(found)) if more else None)

    def _sorts(self):
        """The application sorts lists (its ServiceProviderConfig says so): pages of groups
        are then in name order, and stay stable from one page to the next."""
        if self._sorting is None:
            with self._answers(_("reading its service provider configuration")):
                config = self.client.query(ServiceProviderConfig)
            self._sorting = bool(config.sort and config.sort.supported)
        return self._sorting

    # --- users --------------------------------------------------------------------------

    def _key_of(self, resource):
        """The external key of an application's user: its userName, or its primary email."""
        if self.config.user_match == "userName":
            return (resource.user_name or "").lower()
        emails = resource.emails or []
        primary = next((e for e in emails if e.primary), emails[0] if emails else None)
        return (primary.value or "").lower() if primary else ""

    def _find_users(self, users):
        """{user.pk: the application's User} for those of ``users`` it has."""
        wanted = {self.user_key(u): u for u in users if self.user_key(u)}
        attribute = "userName" if self.config.user_match == "userName" else "emails.value"
        found = {}
        keys = sorted(wanted)
        for start in range(0, len(keys), FILTER_CHUNK):
            chunk = keys[start : start + FILTER_CHUNK]
            search = SearchRequest(
                filter=" or ".join(f"{attribute} eq {_quoted(k)}" for k in chunk),
                attributes=["userName", "emails"],
                count=len(chunk) * 2,
            )
            with self._answers(_("looking up %(count)s user(s)") % {"count": len(chunk)}):
                page = self.client.query(ScimUser, query_parameters=search)
            for resource in page.resources or []:
                for key in self._keys_matching(resource):
                    if key in wanted:
                        found[wanted[key].pk] = resource
        return found

    def _keys_matching(self, resource):
        if self.config.user_match == "userName":
            return [(resource.user_name or "").lower()]
        return [(e.value or "").lower() for e in resource.emails or []]

    def _ensure_users(self, users):
        """{user.pk: the application's User id}, creating the users it does not have."""
        ids = {pk: resource.id for pk, resource in self._find_users(users).items()}
        for user in users:
            if user.pk in ids:
                continue
            try:
                with self._answers(_("creating the user %(user)s") % {"user": self.user_key(user)}):
                    created = self.client.create(self._new_user(user))
            except ConnectorRefused:
                # Created meanwhile by another delivery (409), or refused: look once more.
                again = self._find_users([user])
                if user.pk not in again:
                    raise
                created = again[user.pk]
            ids[user.pk] = created.id
        return ids

    def _new_user(self, user):
        sent = set(self.config.user_attributes) | {"userName"}
        fields = {"user_name": user.email}
        if "displayName" in sent and user.display_name:
            fields["display_name"] = user.display_name
        if "emails" in sent and user.email:
            fields["emails"] = [Email(value=user.email, primary=True, type="work")]
        if "name" in sent and user.display_name:
            given, _space, family = user.display_name.rpartition(" ")
            fields["name"] = Name(
                formatted=user.display_name,
                given_name=given or None,
                family_name=family or None,
            )
        if "active" in sent:
            fields["active"] = bool(user.is_active)
        if "externalId" in sent:
            fields["external_id"] = str(user.pk)
        return ScimUser(**fields)

    def _user_keys(self, ids):
        """{User id: external key} of the given application user ids (members of a group)."""
        keys = {}
        if len(ids) > LOOKUP_LIMIT:
            wanted = set(ids)
            for resource in self._all_users():
                if resource.id in wanted:
                    keys[resource.id] = self._key_of(resource)
        else:
            for start in range(0, len(ids), FILTER_CHUNK):
                chunk = ids[start : start + FILTER_CHUNK]
                search = SearchRequest(
                    filter=" or ".join(f"id eq {_quoted(pk)}" for pk in chunk),
                    attributes=["userName", "emails"],
                    count=len(chunk),
                )
                with self._answers(_("reading %(count)s member(s)") % {"count": len(chunk)}):
                    page = self.client.query(ScimUser, query_parameters=search)
                keys.update({r.id: self._key_of(r) for r in page.resources or []})
        # A member that is no user (a nested group, a user deleted since) keeps its id.
        return {pk: keys.get(pk) or pk.lower() for pk in ids}

    def _all_users(self, filter=None):  # noqa: A002 - SCIM's parameter name
        """Every user of the application (matching ``filter``), a page at a time."""
        start, size = 1, self.config.page_size
        while True:
            search = SearchRequest(
                filter=filter, attributes=["userName", "emails"], start_index=start, count=size
            )
            with self._answers(_("listing its users from %(start)s") % {"start": start}):
                page = self.client.query(ScimUser, query_parameters=search)
            resources = page.resources or []
            yield from resources
            start += len(resources)
            if not resources or start > (page.total_results or 0):
                return

    # --- roles as group members ---------------------------------------------------------

    def _group_id(self, role):
        if role.origin_id == GroupMembership.Role.MEMBER:
            return role.resource.origin_id
        return role.origin_id  # an application role that stands for one of its groups

    def _patch_group(self, group_id, operations, doing):
        with self._answers(doing):
            self.client.modify(Group, group_id, PatchOp[Group](operations=operations))

    def _add_members(self, group_id, ids):
        step = self.config.max_members_per_patch
        for start in range(0, len(ids), step):
            chunk = ids[start : start + step]
            doing = _("adding %(count)s member(s) to the group %(group)s") % {
                "count": len(chunk),
                "group": group_id,
            }
            try:
                self._patch_group(group_id, [self._add(chunk)], doing)
            except ConnectorRefused as exc:
                # Some applications answer 409 when one of them is a member already: add the
                # others only.
                if getattr(exc, "status", None) != 409:
                    raise
                missing = sorted(set(chunk) - set(self._member_ids(group_id)))
                if missing:
                    self._patch_group(group_id, [self._add(missing)], doing)

    @staticmethod
    def _add(ids):
        return PatchOperation[Group](
            op=PatchOperation.Op.add,
            path="members",
            value=[GroupMember(value=pk) for pk in ids],
        )

    def _remove_members(self, group_id, ids):
        step = self.config.max_members_per_patch
        for start in range(0, len(ids), step):
            chunk = ids[start : start + step]
            doing = _("removing %(count)s member(s) from the group %(group)s") % {
                "count": len(chunk),
                "group": group_id,
            }
            try:
                self._patch_group(group_id, self._removals(chunk), doing)
            except ConnectorRefused as exc:
                # An application may answer 400 noTarget for a member that is not there.
                if getattr(exc, "scim_type", "") != "noTarget":
                    raise
                present = sorted(set(chunk) & set(self._member_ids(group_id)))
                if present:
                    self._patch_group(group_id, self._removals(present), doing)

    @staticmethod
    def _removals(ids):
        return [
            PatchOperation[Group](
                op=PatchOperation.Op.remove, path=f"members[value eq {_quoted(pk)}]"
            )
            for pk in ids
        ]

    def _member_ids(self, group_id):
        doing = _("reading the members of the group %(group)s") % {"group": group_id}
        with self._answers(doing):
            group = self.client.query(Group, group_id, query_parameters={"attributes": ["members"]})
        return [m.value for m in group.members or [] if m.value]

    def _holders_by_id(self, role):
        """{application user id: external key} of whoever holds ``role`` now."""
        if self.config.role_attribute:
            return {r.id: self._key_of(r) for r in self._all_users(self._holding_filter(role))}
        return self._user_keys(self._member_ids(self._group_id(role)))

    # --- roles as a user attribute ------------------------------------------------------

    def _holding_filter(self, role):
        path = self.config.role_attribute
        if self.config.multi_valued:
            return f"{path}.value eq {_quoted(role.origin_id)}"
        return f"{path} eq {_quoted(role.origin_id)}"

    def _set_attribute(self, scim_id, role, *, add):
        path, value = self.config.role_attribute, role.origin_id
        if self.config.multi_valued:
            operation = (
                PatchOperation[ScimUser](
                    op=PatchOperation.Op.add, path=path, value=[{"value": value}]
                )
                if add
                else PatchOperation[ScimUser](
                    op=PatchOperation.Op.remove, path=f"{path}[value eq {_quoted(value)}]"
                )
            )
        elif add:
            operation = PatchOperation[ScimUser](
                op=PatchOperation.Op.replace_, path=path, value=value
            )
        else:
            # Only a user whose attribute holds this role's value loses it.
            holding = f"id eq {_quoted(scim_id)} and {self._holding_filter(role)}"
            if not any(True for _u in self._all_users(holding)):
                return
            operation = PatchOperation[ScimUser](op=PatchOperation.Op.remove, path=path)
        doing = (
            _("giving %(value)s to the user %(user)s")
            if add
            else _("taking %(value)s from the user %(user)s")
        ) % {"value": value, "user": scim_id}
        try:
            with self._answers(doing):
                self.client.modify(ScimUser, scim_id, PatchOp[ScimUser](operations=[operation]))
        except ConnectorRefused as exc:
            if add or getattr(exc, "scim_type", "") != "noTarget":
                raise

    # --- errors -------------------------------------------------------------------------

    @contextmanager
    def _answers(self, doing):
        """Turns the client's exceptions into ConnectorError / ConnectorRefused sentences."""
        try:
            yield
        except RequestNetworkException as exc:
            cause = exc.__cause__
            names = {"system": self.system, "doing": doing, "error": cause or exc}
            if isinstance(cause, httpx.TimeoutException):
                raise ConnectorTimeout(
                    _("%(system)s did not answer in time while %(doing)s.") % names
                ) from None
            raise ConnectorError(
                _("%(system)s could not be reached while %(doing)s: %(error)s") % names
            ) from None
        except SCIMException as exc:
            response = getattr(exc, "source", None)
            raise self._refusal(
                _status(exc, response), exc.detail or str(exc), response, doing, exc.scim_type
            ) from None
        except SCIMClientException as exc:
            response = exc.source if isinstance(exc.source, httpx.Response) else None
            raise self._refusal(_status(None, response), str(exc), response, doing, "") from None

    def _refusal(self, status, detail, response, doing, scim_type):
        names = {"system": self.system, "status": status, "doing": doing, "detail": detail}
        if status is None or status >= 500 or status in (408, 429):
            message = _("%(system)s answered %(status)s while %(doing)s: %(detail)s") % names
            if status is None:
                message = _("%(system)s gave an unreadable answer while %(doing)s: %(detail)s")
                message %= names
            error = ConnectorError(message, retry_after=_retry_after(response))
        else:
            error = ConnectorRefused(
                _("%(system)s refused %(doing)s (%(status)s): %(detail)s") % names
            )
        error.status, error.scim_type = status, scim_type or ""
        return error


def _status(exc, response):
    for value in (getattr(exc, "status", None), getattr(response, "status_code", None)):
        try:
            return int(value)
        except (TypeError, ValueError):
            continue
    return None
