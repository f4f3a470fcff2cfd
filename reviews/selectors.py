"""Reads about access reviews shared by My Access, the admin and the services.

One definition of "who may decide an item": a reviewer row for the item itself, or a row for
the whole instance (specific reviewers) as long as the item is not the reviewer's own access.
"""

from django.db.models import Count, Q

from directory.models import User
from entitlements import permissions

from .models import Decision, ReviewInstance, ReviewItem, ReviewItemReviewer, ReviewStatus


def _reviewable(user):
    """The items ``user`` was resolved to review, in any instance, running or not."""
    mine = ReviewItemReviewer.objects.filter(user_id=user.pk)
    return Q(pk__in=mine.filter(item__isnull=False).values("item_id")) | (
        Q(instance_id__in=mine.filter(item__isnull=True).values("instance_id"))
        & ~Q(target_id=user.pk)
    )


def declare_scopes():
    """Who sees the reviews' rows: they follow the catalog of the package under review, like
    its assignments; anybody sees the items they review (``restrict(user, "review")``)."""
    catalog = "access_package__catalog"
    permissions.declare_scope(ReviewInstance, permissions.ASSIGNMENTS, catalog)
    permissions.declare_scope(
        ReviewItem, permissions.ASSIGNMENTS, f"instance__{catalog}", review=_reviewable
    )
    permissions.declare_scope(ReviewItemReviewer, permissions.ASSIGNMENTS, f"instance__{catalog}")


def reviewable_items(*, user):
    """The items of running reviews that ``user`` may decide, decided or not."""
    return ReviewItem.objects.restrict(user, "review").filter(
        instance__status=ReviewStatus.IN_PROGRESS
    )


def pending_review_count(*, user):
    """How many items wait for a decision from ``user`` (the overview's number)."""
    return reviewable_items(user=user).filter(decision=Decision.NOT_REVIEWED).count()


def is_reviewer(*, user, item):
    """Whether ``user`` was resolved as a reviewer of ``item`` (one query)."""
    rows = ReviewItemReviewer.objects.filter(user_id=user.pk).filter(
        Q(item_id=item.pk) | Q(item__isnull=True, instance_id=item.instance_id)
    )
    for item_id in rows.values_list("item_id", flat=True):
        if item_id is not None or item.target_id != user.pk:
            return True
    return False


def reviewers_of(*, item):
    """The people who may decide ``item``, for the admin and for emails."""
    return User.objects.filter(
        Q(review_assignments__item=item)
        | (
            Q(review_assignments__item__isnull=True, review_assignments__instance=item.instance_id)
            & ~Q(pk=item.target_id)
        )
    ).distinct()


def reviewer_item_counts(*, instance, undecided_only=False):
    """{user id: number of items of ``instance`` the user may decide} for every reviewer."""
    items = instance.items.all()
    if undecided_only:
        items = items.filter(decision=Decision.NOT_REVIEWED)
    counts = dict(
        ReviewItemReviewer.objects.filter(instance=instance, item__in=items)
        .values_list("user_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    everyone = list(
        ReviewItemReviewer.objects.filter(instance=instance, item__isnull=True).values_list(
            "user_id", flat=True
        )
    )
    if everyone:
        total = items.count()
        own = dict(
            items.filter(target_id__in=everyone)
            .values_list("target_id")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for user_id in everyone:
            # Their count covers every item already, including any they also review as manager.
            counts[user_id] = total - own.get(user_id, 0)
    return counts
