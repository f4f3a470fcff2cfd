"""The emails of access reviews: started, half-way reminder, last reminder.

``services.reviews_send_reminders`` records them with ``notifications.services.notify``; the
counts and names they show are kept in the notification's context when it is recorded.
"""

from notifications import kinds
from notifications.links import absolute_url
from notifications.models import NotificationKind

REVIEW_KINDS = (
    NotificationKind.REVIEW_STARTED,
    NotificationKind.REVIEW_REMINDER,
    NotificationKind.REVIEW_ENDING,
)


def review_links(notification, context):
    return {"review_url": absolute_url("reviews:list")}


def register_kinds():
    for kind in REVIEW_KINDS:
        kinds.register(kind, links=review_links)
