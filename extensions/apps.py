from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ExtensionsConfig(AppConfig):
    name = "extensions"
    verbose_name = _("Custom extensions")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from entitlements import permissions
        from entitlements.extension import register_extension_steps
        from entitlements.models import Assignment, AssignmentRequest
        from entitlements.signals import (
            assignment_delivered,
            request_canceled,
            request_denied,
            request_expired,
        )

        from . import tasks  # noqa: F401 - registers the tasks enqueued by name
        from .models import CustomExtension, CustomExtensionCallout, CustomExtensionStageSetting
        from .services import Steps

        register_extension_steps(Steps())
        # Only a catalog's owners manage its extensions (as its resources); its readers and
        # managers see them and their callouts.
        permissions.declare_scope(CustomExtension, permissions.RESOURCES, "catalog")
        permissions.declare_scope(
            CustomExtensionStageSetting, permissions.RESOURCES, "custom_extension__catalog"
        )
        permissions.declare_scope(
            CustomExtensionCallout, permissions.ASSIGNMENTS, "custom_extension__catalog"
        )
        assignment_delivered.connect(
            _on_delivered, sender=Assignment, dispatch_uid="extensions.granted"
        )
        for ended in (request_canceled, request_denied, request_expired):
            ended.connect(
                _on_request_ended,
                sender=AssignmentRequest,
                dispatch_uid=f"extensions.request_ended.{id(ended)}",
            )


def _on_delivered(sender, assignment, request, **kwargs):
    # Sent inside the delivering transaction: the callout row commits with the delivery.
    from .services import assignment_granted

    assignment_granted(assignment=assignment, request=request)


def _on_request_ended(sender, request, **kwargs):
    # Sent on commit of the cancel or denial: its waiting callouts are waited for no more.
    from .services import callouts_close

    callouts_close(request_id=request.pk)
