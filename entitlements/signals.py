"""What the lifecycle tells higher layers (notifications, reviews). Sent on commit, except
``assignment_delivered``: sent inside the delivering transaction, so the outbox row its
receiver writes commits with the delivery (receivers of it only write rows, never call out).

Receivers never change state; they enqueue work (emails) that calls services.
Each signal is sent with ``sender`` the model class and the keyword arguments listed.
"""

from django.dispatch import Signal

request_submitted = Signal()  # request
request_denied = Signal()  # request, stage (None when not through an approval), reason
request_expired = Signal()  # request (no decision before the deadline)
request_canceled = Signal()  # request, actor
assignment_delivered = Signal()  # assignment, request
assignment_delivery_failed = Signal()  # assignment
assignment_extended = Signal()  # assignment, request
assignment_ended = Signal()  # assignment, reason, notify (False for a silent admin removal)
# Sent once per batch when many assignments end together (the expiry job, review results).
assignments_ended = Signal()  # assignment_ids, reason
