"""My Access pages for personal API tokens: create one (shown once), list and revoke mine."""

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from entitlements.errors import DomainError
from entitlements.models import Channel

from .models import AccessToken
from .permissions import DELEGATED_PERMISSIONS
from .tokens import PERSONAL_TOKEN_MAX, personal_token_create, token_revoke

EXPIRY_CHOICES = [
    (7, gettext_lazy("7 days")),
    (30, gettext_lazy("30 days")),
    (90, gettext_lazy("90 days")),
]


class PersonalTokenForm(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=128,
        help_text=gettext_lazy("What the token is for, e.g. “onboarding script”."),
    )
    expires_in = forms.TypedChoiceField(
        label=gettext_lazy("Expires after"),
        choices=EXPIRY_CHOICES,
        coerce=int,
        initial=30,
        widget=forms.RadioSelect,
    )
    permissions = forms.MultipleChoiceField(
        label=gettext_lazy("Permissions"),
        choices=[(name, name) for name in DELEGATED_PERMISSIONS],
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy(
            "The token acts as you, within your own roles, and only for these kinds of calls."
        ),
    )


def _my_tokens(user):
    return AccessToken.objects.filter(user=user, kind=AccessToken.Kind.DELEGATED).order_by(
        "-created"
    )


def _page(request, form, status=200):
    return render(
        request,
        "api/tokens.html",
        {
            "tab": "api-tokens",
            "form": form,
            "tokens": _my_tokens(request.user)[:200],
            "now": timezone.now(),
        },
        status=status,
    )


@login_required
@require_GET
def token_list(request):
    return _page(request, PersonalTokenForm())


@login_required
@never_cache
@require_POST
def token_create(request):
    form = PersonalTokenForm(request.POST)
    if form.is_valid():
        now = timezone.now()
        days = min(timedelta(days=form.cleaned_data["expires_in"]), PERSONAL_TOKEN_MAX)
        try:
            token, value = personal_token_create(
                actor=request.user,
                name=form.cleaned_data["name"],
                permissions=form.cleaned_data["permissions"],
                expires=now + days,
                channel=Channel.PORTAL,
                now=now,
            )
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            # Shown on this response only: the value is not stored and not in any redirect.
            return render(
                request,
                "api/token_created.html",
                {"tab": "api-tokens", "token": token, "value": value},
            )
    return _page(request, form, status=400)


@login_required
@require_http_methods(["POST"])
def token_revoke_view(request, pk):
    token = _my_tokens(request.user).filter(pk=pk).first()
    if token is None:
        raise Http404  # someone else's token looks like one that does not exist
    token_revoke(actor=request.user, token=token, channel=Channel.PORTAL)
    messages.success(request, _("The token “%(name)s” is revoked.") % {"name": token.name})
    return redirect("api-tokens")
