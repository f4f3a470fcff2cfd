"""What every connector does, the errors it raises, its secret, and the timeout around a call.

A connector class serves one kind of connected system (``registry.register_connector_kind``)
and is instantiated once per system row (and settings version) with that row: its settings
(``system.settings``, a JSON object) and its credential (``system_secret(system)``). Delivery,
drift reconciliation, discovery and the admin's "test connection" call it through ``call``,
never inside a database transaction.

Errors: a connector raises ``ConnectorError`` (or a subclass) with a sentence an administrator
can act on, naming the system; never a library's exception. ``ConnectorError`` is retryable
(a network error, a timeout, a 5xx): delivery retries it with exponential backoff and jitter,
or after ``retry_after`` seconds when the system said so (SCIM's 429 ``Retry-After``).
``ConnectorRefused`` is a definite refusal (the user does not exist in the target, the group
is gone, a 4xx other than 429): recorded as deliveryFailed with the message, never retried,
and it does not count against the system's health (the system answered).
"""

import os
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from django.utils.translation import gettext as _

DEFAULT_TIMEOUT = 30  # seconds; a system's settings may say {"timeout": 10}


class ConnectorError(Exception):
    """A call that did not happen and may succeed later; kept on the grant, and retried.

    ``retry_after``: seconds the system asked us to wait before the next attempt (None: the
    worker's own backoff decides). ``ConnectorError("...", retry_after=30)``.
    """

    retryable = True

    def __init__(self, message="", *, retry_after=None):
        super().__init__(message)
        self.retry_after = retry_after


class ConnectorTimeout(ConnectorError):
    """The system did not answer within its timeout; retried like any other failure."""


class ConnectorRefused(ConnectorError):
    """The system answered and definitely refused (not found, forbidden, invalid): recorded as
    deliveryFailed with the system's message and never retried by the worker."""

    retryable = False


@dataclass(frozen=True)
class DiscoveredGroup:
    """A group found in a connected system by ``search_groups``, which an administrator may
    add to a catalog as a resource.

    ``origin_id``: the group's id in the system, which becomes the resource's ``origin_id``
    (LDAP: its DN; SCIM: the Group's ``id``). ``has_owners``: the system records owners of the
    group, so the resource gets an Owner role as well as Member. ``owner_keys``: the owners'
    external keys, as ``user_key`` gives them (for the ownership rule), when known.
    """

    origin_id: str
    display_name: str
    description: str = ""
    has_owners: bool = False
    owner_keys: tuple = ()


def system_secret(system):
    """The credential of ``system``, read from where its ``secret_reference`` points: the name
    of an environment variable, or the path of a file (its contents, stripped of the final
    newline). "" when the system has no reference; ConnectorRefused when the reference leads
    nowhere. The credential itself is never stored in the database."""
    reference = (getattr(system, "secret_reference", "") or "").strip()
    if not reference:
        return ""
    if reference in os.environ:
        return os.environ[reference]
    if os.sep in reference or reference.startswith("."):
        try:
            with open(reference, encoding="utf-8") as handle:
                return handle.read().rstrip("\r\n")
        except OSError as exc:
            raise ConnectorRefused(
                _("The secret file %(path)s of %(system)s cannot be read: %(error)s.")
                % {"path": reference, "system": system, "error": exc.strerror or exc}
            ) from None
    raise ConnectorRefused(
        _(
            "%(system)s's secret reference %(reference)s is neither an environment variable "
            "nor a file path."
        )
        % {"system": system, "reference": reference}
    )


class Connector:
    """Grants and revokes the roles of one connected system's resources.

    Every method takes ``role``, a ResourceRole whose ``resource`` (with ``origin_id``, e.g. an
    LDAP group's DN) is in this connector's system; ``user`` is a ``directory.User``.

    ``grant(role, user)`` / ``revoke(role, user)``: idempotent. Granting a role the user holds
    already, or revoking one they do not hold (someone removed it by hand), succeeds silently.
    ``grant_many(role, users)`` / ``revoke_many(role, users)``: the same for a batch; a
    connector may do it in one request, and must still succeed when some of the batch already
    are (or are not) members. They raise for the whole batch: all or none are recorded.

    ``holders(role)``: the set of the *external keys* of the role's holders in the system now,
    whoever gave it (LDAP: the configured user attribute, e.g. mail or a DN; SCIM: userName
    or email), compared by drift reconciliation with ``user_key(user)`` of the users the
    product says hold it. Keys are compared as returned, so both methods must normalise alike
    (the default: lower case). Drift removes extra holders, known only by their keys, with
    ``revoke_keys(role, keys)``.

    ``test_connection()``: a sentence saying what it found ("Connected to ... as ...; 120
    groups under ..."), or ConnectorError saying why not. ``search_groups(query, cursor=None,
    limit=50)``: (list of DiscoveredGroup, next cursor or None), groups whose name contains
    ``query`` ("" for all); the cursor is opaque, returned as given.

    Delivery calls them through ``call``, with no database transaction or lock held.
    """

    # A network connector runs each call in a worker thread and stops waiting after
    # ``timeout`` seconds (it should also hand the timeout to its client library, so the
    # thread ends too). A connector writing this database runs in the caller's thread, on
    # the caller's connection, bounded by the database's statement timeout.
    in_thread = True
    _pool = None
    # The system records owners of its groups: a group added from it gets an Owner role.
    has_owners = False

    def __init__(self, system=None):
        self.system = system
        settings = getattr(system, "settings", None) or {}
        self.settings = settings
        self.timeout = float(settings.get("timeout", DEFAULT_TIMEOUT))

    def secret(self):
        """The system's credential (``system_secret``), read each time it is needed."""
        return system_secret(self.system)

    def grant(self, role, user):
        raise NotImplementedError

    def revoke(self, role, user):
        raise NotImplementedError

    def holders(self, role):
        """The external keys (``user_key``) of whoever holds ``role`` now, as a set."""
        raise NotImplementedError

    def user_key(self, user):
        """The key ``holders`` uses for ``user`` (by default the lower-cased email)."""
        return (user.email or "").lower()

    def grant_many(self, role, users):
        """Grant ``role`` to each of ``users``; a connector may do it in one call."""
        for user in users:
            self.grant(role, user)

    def revoke_many(self, role, users):
        """Revoke ``role`` from each of ``users``; a connector may do it in one call."""
        for user in users:
            self.revoke(role, user)

    def revoke_keys(self, role, keys):
        """Remove the holders known only by their external keys (drift's extra members)."""
        raise ConnectorRefused(
            _("%(system)s cannot remove members it knows only by key.") % {"system": self.system}
        )

    def test_connection(self):
        """A sentence saying what the connector found; ConnectorError when it cannot connect."""
        raise NotImplementedError

    def search_groups(self, query="", cursor=None, limit=50):
        """(list of DiscoveredGroup, next cursor or None) of the system's groups."""
        raise ConnectorRefused(_("%(system)s has no groups to discover.") % {"system": self.system})

    def call(self, method, *args, **kwargs):
        """Run ``method`` (``"grant"``, ``"revoke_many"``, ...) within the timeout."""
        function = getattr(self, method)
        if not self.in_thread:
            return function(*args, **kwargs)
        if Connector._pool is None:
            Connector._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="connector")
        future = Connector._pool.submit(function, *args, **kwargs)
        try:
            return future.result(timeout=self.timeout)
        except FutureTimeout:
            raise ConnectorTimeout(
                _("%(system)s did not answer within %(seconds)s seconds.")
                % {"system": self.system or _("The system"), "seconds": f"{self.timeout:g}"}
            ) from None
