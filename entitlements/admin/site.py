"""Opening the admin site to the people who hold the product's admin roles."""

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from entitlements import permissions


class RoleAwareAuthenticationForm(AdminAuthenticationForm):
    """The admin sign-in form, accepting catalog owners, readers and managers who are not staff."""

    def confirm_login_allowed(self, user):
        AuthenticationForm.confirm_login_allowed(self, user)
        if not permissions.may_enter_admin(user):
            raise ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


def open_admin_to_role_holders(site):
    """Let staff and anyone holding an admin role (direct or delivered) enter ``site``.

    What each person then sees is decided per model by ``entitlements.permissions``.
    """
    site.has_permission = lambda request: permissions.may_enter_admin(request.user)
    site.login_form = RoleAwareAuthenticationForm
