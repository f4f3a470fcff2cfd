"""The overview: what waits for me, and where to go next."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from approvals import selectors as approval_selectors
from entitlements import selectors
from entitlements.models import OPEN_REQUEST_STATES
from reviews.selectors import pending_review_count


@login_required
def home(request):
    user = request.user
    my_requests = selectors.user_requests(user=user)
    return render(
        request,
        "myaccess/home.html",
        {
            "tab": "overview",
            "pending_approvals": approval_selectors.pending_stages_for(user=user).count(),
            "pending_reviews": pending_review_count(user=user),
            "open_requests": my_requests.filter(state__in=OPEN_REQUEST_STATES).count(),
            "active_assignments": selectors.user_assignments(user=user, active=True).count(),
            "recent_requests": my_requests[:5],
        },
    )
