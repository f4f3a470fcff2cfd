from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from entitlements.approval import register_approval_steps

        from . import emails  # models are loaded now: connects the email receivers
        from .selectors import declare_scopes
        from .services import ApprovalSteps

        emails.register_kinds()
        register_approval_steps(ApprovalSteps())
        declare_scopes()
