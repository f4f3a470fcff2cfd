"""Which app renders which kind of email: each app registers its own kinds at start-up.

The outbox knows the request, the assignment and the recipient of an email; everything
else (an approval stage, a review) belongs to the app that sends the kind, which registers
in its ``AppConfig.ready()``::

    kinds.register(
        NotificationKind.APPROVAL_REQUIRED,
        context=stage_context,  # notification -> dict for the templates
        links=decision_links,  # (notification, context) -> dict of absolute URLs
    )

The templates are ``emails/<kind>.subject.txt``, ``.txt`` and ``.html`` unless ``template``
names another base.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

from .models import NotificationKind


@dataclass(frozen=True)
class Kind:
    """How one kind of email is rendered, as registered by the app that sends it."""

    kind: str
    template: str
    context: Callable | None = None
    links: Callable | None = None
    # An email to the person who holds or asked for the access; a policy can switch it off.
    to_requestor: bool = False


_registry: dict[str, Kind] = {}


def register(kind, *, template=None, context=None, links=None, to_requestor=False):
    """Say how ``kind`` is rendered; registering the same kind differently is an error."""
    if kind not in NotificationKind.values:
        raise ImproperlyConfigured(f"{kind!r} is not a NotificationKind.")
    entry = Kind(
        kind=str(kind),
        template=template or f"emails/{kind}",
        context=context,
        links=links,
        to_requestor=to_requestor,
    )
    if _registry.get(entry.kind, entry) != entry:
        raise ImproperlyConfigured(f"The email kind {kind!r} is registered twice.")
    _registry[entry.kind] = entry
    return entry


def get(kind):
    """The registration of ``kind``; a kind nobody registered cannot be sent."""
    try:
        return _registry[kind]
    except KeyError:
        raise ImproperlyConfigured(f"No app registered the email kind {kind!r}.") from None


def registered():
    return set(_registry)
