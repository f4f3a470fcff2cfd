"""LDAP servers (OpenLDAP, Active Directory): group membership through ldap3.

A resource is a group entry (``origin_id`` its DN); its Member role is the group's member
attribute, its Owner role the owner attribute. A user of the product is found in the
directory by a configurable attribute (``mail`` by default) holding their email address (or
its local part), under ``user_base`` and matching ``user_filter``. The settings (JSON on the
connected system; every one optional but ``url``):

``url``               ldap://host:389 or ldaps://host:636
``start_tls``         upgrade an ldap:// connection with StartTLS (default false)
``verify``            verify the server's certificate (default true); ``ca_file`` the CA bundle
``bind_dn``           who binds; the password is the system's secret reference
``user_base``         where people are; ``user_filter`` which entries are people
                      (default ``(objectClass=inetOrgPerson)``)
``user_attribute``    mail, uid, sAMAccountName, userPrincipalName... (default mail)
``user_match``        ``email`` (default) or ``local_part`` (the part before the @)
``group_base``        where groups are; ``group_object_class`` groupOfNames (default),
                      groupOfUniqueNames or group (AD); ``group_filter`` (default
                      ``(objectClass=<group_object_class>)``); ``group_name_attribute`` cn
``member_attribute``  member (default; uniqueMember for groupOfUniqueNames)
``owner_attribute``   owner (default; managedBy in AD); "" when groups have no owners
``page_size``         paged searches (default 500); ``timeout`` seconds (default 30);
                      ``pool_size`` connections kept open per system (default 4)

``holders`` gives the user attribute's values (lower case) of the members found under
``user_base``, and ``dn:<dn>`` for any other member (a nested group, someone outside the
base). A groupOfNames must have a member: removing the last one leaves the group's own DN
there, which is not counted as a holder.
"""

import queue
import ssl
from urllib.parse import urlsplit

import ldap3
from django.utils.translation import gettext as _
from ldap3.core import exceptions as ldap_errors
from ldap3.utils.conv import escape_filter_chars

from .base import Connector, ConnectorError, ConnectorRefused, DiscoveredGroup

# Result codes (RFC 4511) that say "try again later" rather than "no".
RETRYABLE_RESULTS = {3, 10, 11, 51, 52, 80}  # timeLimit, referral, adminLimit, busy, unavailable
ATTRIBUTE_OR_VALUE_EXISTS = 20
NO_SUCH_ATTRIBUTE = 16
OBJECT_CLASS_VIOLATION = 65
NO_SUCH_OBJECT = 32
# Members resolved one by one (a base read each) up to this many; above, one paged search of
# every person under user_base.
READ_ONE_BY_ONE = 200
FILTER_CHUNK = 200  # users looked up per search with an (|(mail=...)...) filter
DISCOVERY_CAP = 10_000  # groups matched by one discovery search


class LdapConnector(Connector):
    """One LDAP server's groups; a small pool of bound connections shared by threads."""

    def __init__(self, system=None):
        super().__init__(system)
        s = self.settings
        self.url = s.get("url", "")
        parts = urlsplit(self.url)
        if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
            self.config_error = _(
                "%(system)s needs a url such as ldap://host:389 or ldaps://host:636."
            ) % {"system": system}
        else:
            self.config_error = ""
        self.use_ssl = parts.scheme == "ldaps"
        self.host = parts.hostname or ""
        self.port = parts.port or (636 if self.use_ssl else 389)
        self.start_tls = bool(s.get("start_tls", False))
        self.verify = bool(s.get("verify", True))
        self.ca_file = s.get("ca_file") or None
        self.bind_dn = s.get("bind_dn", "")
        self.user_base = s.get("user_base", "")
        self.user_filter = s.get("user_filter") or "(objectClass=inetOrgPerson)"
        self.user_attribute = s.get("user_attribute") or "mail"
        self.user_match = s.get("user_match") or "email"
        self.group_base = s.get("group_base", "")
        self.group_object_class = s.get("group_object_class") or "groupOfNames"
        self.group_filter = s.get("group_filter") or f"(objectClass={self.group_object_class})"
        self.group_name_attribute = s.get("group_name_attribute") or "cn"
        default_member = (
            "uniqueMember" if self.group_object_class == "groupOfUniqueNames" else ("member")
        )
        self.member_attribute = s.get("member_attribute") or default_member
        self.owner_attribute = s.get("owner_attribute", "owner")
        self.has_owners = bool(self.owner_attribute)
        self.page_size = int(s.get("page_size", 500))
        self.pool_size = int(s.get("pool_size", 4))
        self._idle = queue.LifoQueue()

    # --- Connections ----------------------------------------------------------------------

    def _server(self):
        tls = None
        if self.use_ssl or self.start_tls:
            tls = ldap3.Tls(
                validate=ssl.CERT_REQUIRED if self.verify else ssl.CERT_NONE,
                ca_certs_file=self.ca_file,
                version=ssl.PROTOCOL_TLS_CLIENT,
            )
        return ldap3.Server(
            self.host,
            port=self.port,
            use_ssl=self.use_ssl,
            tls=tls,
            get_info=ldap3.NONE,
            connect_timeout=max(1, int(self.timeout)),
        )

    def _open(self):
        if self.config_error:
            raise ConnectorRefused(self.config_error)
        conn = ldap3.Connection(
            self._server(),
            user=self.bind_dn or None,
            password=self.secret() if self.bind_dn else None,
            receive_timeout=max(1, int(self.timeout)),
            auto_range=True,
            raise_exceptions=False,
            read_only=False,
        )
        try:
            conn.open()
            if self.start_tls and not self.use_ssl and not conn.start_tls():
                raise ConnectorError(self._message(_("StartTLS failed"), conn))
            if not conn.bind():
                code = conn.result.get("result")
                error = ConnectorRefused if code == 49 else ConnectorError  # bad credentials
                raise error(self._message(_("Binding as %s failed") % self.bind_dn, conn))
        except ldap_errors.LDAPException as exc:
            conn.unbind()
            raise self._network_error(exc) from None
        except ConnectorError:
            conn.unbind()
            raise
        return conn

    def _acquire(self):
        """(connection, taken from the pool)."""
        try:
            return self._idle.get_nowait(), True
        except queue.Empty:
            return self._open(), False

    def _release(self, conn):
        if self._idle.qsize() < self.pool_size:
            self._idle.put(conn)
        else:
            conn.unbind()

    def _run(self, work):
        """Run ``work(conn)`` on a pooled connection. A broken connection is dropped; when it
        came from the pool (the server may have closed it while idle) the work runs once
        more on a fresh one. Every change is idempotent, so running it twice is safe."""
        while True:
            conn, pooled = self._acquire()
            try:
                result = work(conn)
            except ldap_errors.LDAPException as exc:
                conn.unbind()
                if pooled:
                    continue
                raise self._network_error(exc) from None
            except BaseException:
                conn.unbind()
                raise
            self._release(conn)
            return result

    def close(self):
        """Unbind every idle connection (tests, and a system whose settings changed)."""
        while True:
            try:
                self._idle.get_nowait().unbind()
            except queue.Empty:
                return

    def _network_error(self, exc):
        return ConnectorError(
            _("%(system)s (%(url)s) did not answer: %(error)s")
            % {"system": self.system, "url": self.url, "error": exc}
        )

    def _message(self, what, conn):
        result = conn.result or {}
        detail = result.get("message") or result.get("description") or ""
        return _("%(system)s: %(what)s: %(detail)s (LDAP result %(code)s).") % {
            "system": self.system,
            "what": what,
            "detail": detail,
            "code": result.get("result"),
        }

    def _failed(self, what, conn):
        """The error for a failed operation: retryable for busy/unavailable, else refused."""
        code = (conn.result or {}).get("result")
        error = ConnectorError if code in RETRYABLE_RESULTS else ConnectorRefused
        return error(self._message(what, conn))

    # --- Users ------------------------------------------------------------------------------

    def user_key(self, user):
        email = (user.email or "").strip().lower()
        if self.user_match == "local_part":
            return email.split("@", 1)[0]
        return email

    def _user_dns(self, conn, keys):
        """{key: dn} of the people whose user attribute is one of ``keys`` (lower case)."""
        found = {}
        keys = sorted({k for k in keys if k})
        for start in range(0, len(keys), FILTER_CHUNK):
            chunk = keys[start : start + FILTER_CHUNK]
            values = "".join(f"({self.user_attribute}={escape_filter_chars(k)})" for k in chunk)
            search = f"(&{self.user_filter}(|{values}))"
            for dn, attributes in self._paged(conn, self.user_base, search, [self.user_attribute]):
                for value in _values(attributes.get(self.user_attribute)):
                    if value.lower() in chunk:
                        found.setdefault(value.lower(), dn)
        return found

    def _dns_of(self, conn, users):
        """The DNs of ``users``; ConnectorRefused naming those not in the directory."""
        keys = {user: self.user_key(user) for user in users}
        dns = self._user_dns(conn, keys.values())
        missing = [user for user, key in keys.items() if key not in dns]
        if missing:
            names = ", ".join(f"{u.display_name} ({keys[u] or _('no email')})" for u in missing)
            raise ConnectorRefused(
                _(
                    "%(system)s has no person with %(attribute)s %(names)s under "
                    "%(base)s; add them to the directory, or correct the connector's user "
                    "settings."
                )
                % {
                    "system": self.system,
                    "attribute": self.user_attribute,
                    "names": names,
                    "base": self.user_base or _("the directory"),
                }
            )
        return [dns[keys[user]] for user in users]

    # --- Membership ---------------------------------------------------------------------

    def _attribute(self, role):
        if role.origin_id == "Owner":
            if not self.owner_attribute:
                raise ConnectorRefused(
                    _("%(system)s's groups have no owners (no owner_attribute is set).")
                    % {"system": self.system}
                )
            return self.owner_attribute
        return self.member_attribute

    def grant(self, role, user):
        self.grant_many(role, [user])

    def revoke(self, role, user):
        self.revoke_many(role, [user])

    def grant_many(self, role, users):
        users = list(users)
        if not users:
            return

        def work(conn):
            self._change(conn, role, self._dns_of(conn, users), ldap3.MODIFY_ADD)

        self._run(work)

    def revoke_many(self, role, users):
        users = list(users)
        if not users:
            return

        def work(conn):
            keys = {self.user_key(u) for u in users}
            dns = list(self._user_dns(conn, keys).values())  # someone gone needs no removal
            self._change(conn, role, dns, ldap3.MODIFY_DELETE)

        self._run(work)

    def revoke_keys(self, role, keys):
        keys = set(keys)
        if not keys:
            return

        def work(conn):
            dns = [k[3:] for k in keys if k.startswith("dn:")]
            dns += list(self._user_dns(conn, {k for k in keys if not k.startswith("dn:")}).values())
            self._change(conn, role, dns, ldap3.MODIFY_DELETE)

        self._run(work)

    def _change(self, conn, role, dns, operation):
        """One modify with every value; when the server refuses the batch because one value
        is already there (or already gone), only the values that change are sent."""
        if not dns:
            return
        group = role.resource.origin_id
        attribute = self._attribute(role)
        if conn.modify(group, {attribute: [(operation, dns)]}):
            return
        code = conn.result.get("result")
        harmless = ATTRIBUTE_OR_VALUE_EXISTS if operation == ldap3.MODIFY_ADD else NO_SUCH_ATTRIBUTE
        if code == OBJECT_CLASS_VIOLATION and operation == ldap3.MODIFY_DELETE:
            # groupOfNames must keep a member: the group's own DN holds its place.
            if conn.modify(
                group, {attribute: [(ldap3.MODIFY_DELETE, dns), (ldap3.MODIFY_ADD, [group])]}
            ):
                return
            code = conn.result.get("result")
        if code != harmless and code != OBJECT_CLASS_VIOLATION:
            raise self._failed(_("changing %(group)s") % {"group": group}, conn)
        current = {v.lower() for v in self._read_values(conn, group, attribute)}
        if operation == ldap3.MODIFY_ADD:
            changes = [dn for dn in dns if dn.lower() not in current]
            edits = [(ldap3.MODIFY_ADD, changes)] if changes else []
        else:
            changes = [dn for dn in dns if dn.lower() in current]
            edits = [(ldap3.MODIFY_DELETE, changes)] if changes else []
            if changes and len(current) == len(changes) and self.group_object_class != "group":
                edits.append((ldap3.MODIFY_ADD, [group]))
        if not edits:
            return
        if not conn.modify(group, {attribute: edits}):
            raise self._failed(_("changing %(group)s") % {"group": group}, conn)

    def _read_values(self, conn, dn, attribute):
        if not conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=[attribute]):
            if conn.result.get("result") == NO_SUCH_OBJECT:
                raise ConnectorRefused(
                    _("%(system)s has no entry %(dn)s; it was deleted or renamed.")
                    % {"system": self.system, "dn": dn}
                )
            raise self._failed(_("reading %(dn)s") % {"dn": dn}, conn)
        if not conn.response:
            return []
        attributes = conn.response[0].get("attributes", {})
        # With auto_range, AD's member;range=0-1499 pages are joined under the plain name.
        for name, values in attributes.items():
            if name.split(";", 1)[0].lower() == attribute.lower():
                return _values(values)
        return []

    def holders(self, role):
        return self._run(lambda conn: self._holder_keys(conn, role))

    def _holder_keys(self, conn, role):
        group = role.resource.origin_id
        members = [
            dn
            for dn in self._read_values(conn, group, self._attribute(role))
            if dn.lower() != group.lower()
        ]
        keys = self._keys_of(conn, members)
        return {keys.get(dn.lower(), f"dn:{dn.lower()}") for dn in members}

    def _keys_of(self, conn, dns):
        """{dn (lower case): key} of the members who are people under user_base."""
        base = self.user_base.lower()
        people = [dn for dn in dns if not base or dn.lower().endswith(base)]
        keys = {}
        if len(people) <= READ_ONE_BY_ONE:
            for dn in people:
                if conn.search(dn, self.user_filter, ldap3.BASE, attributes=[self.user_attribute]):
                    for entry in conn.response:
                        values = _values(entry.get("attributes", {}).get(self.user_attribute))
                        if values:
                            keys[dn.lower()] = values[0].lower()
            return keys
        wanted = {dn.lower() for dn in people}
        for dn, attributes in self._paged(
            conn, self.user_base, self.user_filter, [self.user_attribute]
        ):
            values = _values(attributes.get(self.user_attribute))
            if values and dn.lower() in wanted:
                keys[dn.lower()] = values[0].lower()
        return keys

    def search(self, base, search, attributes):
        """[(dn, attributes)] of the entries under ``base`` that ``search`` finds, read page by
        page on one pooled, bound connection (the directory import reads people with it)."""
        return self._run(lambda conn: list(self._paged(conn, base, search, attributes)))

    def _paged(self, conn, base, search, attributes, limit=None):
        """(dn, attributes) of each entry found, page by page."""
        cookie, count = None, 0
        while True:
            ok = conn.search(
                base,
                search,
                ldap3.SUBTREE,
                attributes=attributes,
                paged_size=self.page_size,
                paged_cookie=cookie,
            )
            if not ok and conn.result.get("result") not in (0, NO_SUCH_OBJECT):
                raise self._failed(_("searching %(base)s") % {"base": base or "/"}, conn)
            for entry in conn.response or []:
                if entry.get("type") == "searchResEntry":
                    yield entry["dn"], entry.get("attributes", {})
                    count += 1
                    if limit is not None and count >= limit:
                        return
            controls = conn.result.get("controls", {})
            cookie = controls.get("1.2.840.113556.1.4.319", {}).get("value", {}).get("cookie")
            if not cookie:
                return

    # --- Discovery and testing ----------------------------------------------------------

    def search_groups(self, query="", cursor=None, limit=50):
        """Groups under group_base whose name contains ``query``, by name; the cursor is the
        offset of the next page."""
        offset = int(cursor or 0)
        name = self.group_name_attribute
        search = self.group_filter
        if query:
            search = f"(&{search}({name}=*{escape_filter_chars(query)}*))"
        attributes = [name, "description"] + (
            [self.owner_attribute] if self.owner_attribute else []
        )

        def work(conn):
            rows = []
            for dn, values in self._paged(conn, self.group_base, search, attributes, DISCOVERY_CAP):
                names = _values(values.get(name))
                descriptions = _values(values.get("description"))
                owners = tuple(v.lower() for v in _values(values.get(self.owner_attribute)))
                rows.append(
                    DiscoveredGroup(
                        origin_id=dn,
                        display_name=names[0] if names else dn,
                        description=descriptions[0] if descriptions else "",
                        has_owners=bool(self.owner_attribute),
                        owner_keys=owners,
                    )
                )
            return rows

        rows = sorted(self._run(work), key=lambda g: (g.display_name.lower(), g.origin_id))
        page = rows[offset : offset + limit]
        if page and any(g.owner_keys for g in page):
            page = self._run(lambda conn: [self._owners_as_keys(conn, g) for g in page])
        more = offset + limit < len(rows)
        return page, (str(offset + limit) if more else None)

    def _owners_as_keys(self, conn, group):
        keys = self._keys_of(conn, list(group.owner_keys))
        return DiscoveredGroup(
            origin_id=group.origin_id,
            display_name=group.display_name,
            description=group.description,
            has_owners=group.has_owners,
            owner_keys=tuple(keys.get(dn, f"dn:{dn}") for dn in group.owner_keys),
        )

    def test_connection(self):
        def work(conn):
            who = conn.extend.standard.who_am_i() or self.bind_dn or _("anonymous")
            groups = sum(
                1
                for _e in self._paged(
                    conn, self.group_base, self.group_filter, ["1.1"], DISCOVERY_CAP
                )
            )
            people = sum(
                1
                for _e in self._paged(
                    conn, self.user_base, self.user_filter, ["1.1"], DISCOVERY_CAP
                )
            )
            return who, groups, people

        who, groups, people = self._run(work)

        def count(n):
            return f"{n:,}" if n < DISCOVERY_CAP else _("over %(n)s") % {"n": f"{DISCOVERY_CAP:,}"}

        return _(
            "Connected to %(url)s as %(who)s%(tls)s: %(groups)s groups under %(group_base)s "
            "and %(people)s people under %(user_base)s."
        ) % {
            "url": self.url,
            "who": who.removeprefix("dn:"),
            "tls": _(" over TLS") if (self.use_ssl or self.start_tls) else "",
            "groups": count(groups),
            "group_base": self.group_base or "/",
            "people": count(people),
            "user_base": self.user_base or "/",
        }


def _values(value):
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]
