"""What every connector does, and the timeout around each call."""

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.utils.translation import gettext as _

DEFAULT_TIMEOUT = 30  # seconds; a system's settings may say {"timeout": 10}


class ConnectorError(Exception):
    """A grant or revoke that did not happen; kept on the grant, and retried by the worker."""

    retryable = True


class ConnectorTimeout(ConnectorError):
    """The system did not answer within its timeout; retried like any other failure."""


class Connector:
    """Grants and revokes the roles of one connected system's resources; idempotent.

    ``grant(role, user)`` and ``revoke(role, user)``: granting a role the user holds, or
    revoking one they do not hold, does nothing. ``holders(role)``: the ids of the users who
    hold it now, for reconciliation. ``revoke_many(role, users)`` may revoke a batch at once.
    Delivery calls them through ``call``, with no database transaction or lock held.
    """

    # A network connector runs each call in a worker thread and stops waiting after
    # ``timeout`` seconds (it should also hand the timeout to its client library, so the
    # thread ends too). A connector writing this database runs in the caller's thread, on
    # the caller's connection, bounded by the database's statement timeout.
    in_thread = True
    _pool = None

    def __init__(self, system=None):
        self.system = system
        settings = getattr(system, "settings", None) or {}
        self.timeout = float(settings.get("timeout", DEFAULT_TIMEOUT))

    def grant(self, role, user):
        raise NotImplementedError

    def revoke(self, role, user):
        raise NotImplementedError

    def holders(self, role):
        """The ids of the users who hold ``role`` now, whoever gave it."""
        raise NotImplementedError

    def revoke_many(self, role, users):
        """Revoke ``role`` from each of ``users``; a connector may do it in one call."""
        for user in users:
            self.revoke(role, user)

    def call(self, method, *args):
        """Run ``method`` (``"grant"``, ``"revoke_many"``, ...) within the timeout."""
        function = getattr(self, method)
        if not self.in_thread:
            return function(*args)
        if Connector._pool is None:
            Connector._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="connector")
        future = Connector._pool.submit(function, *args)
        try:
            return future.result(timeout=self.timeout)
        except FutureTimeout:
            raise ConnectorTimeout(
                _("%(system)s did not answer within %(seconds)s seconds.")
                % {"system": self.system or _("The system"), "seconds": f"{self.timeout:g}"}
            ) from None
