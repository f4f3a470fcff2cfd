from django.apps import AppConfig


class ReportsConfig(AppConfig):
    """Read-only reports over access, requests, reviews and sign-ins, shown in the admin."""

    name = "reports"
    verbose_name = "Reports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.utils.translation import gettext_lazy as _

        from entitlements.admin.site import add_home_link
        from entitlements.permissions import may_enter_admin

        from .views import REPORTS, may_see_reports

        # The dashboard's charts are scoped inside; whoever enters the admin may open it.
        add_home_link(
            section="audit",
            name=_("Dashboard"),
            url_name="reports:dashboard",
            may_see=lambda request: may_enter_admin(request.user),
        )
        # A report shows assignments' data: people who may view them in some catalog.
        for slug, report in REPORTS.items():
            add_home_link(
                section="audit",
                name=report.title,
                url_name=f"reports:{slug}",
                may_see=lambda request: may_see_reports(request.user),
            )
