from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo organisation, the one-command local run and the benchmarks: the top layer,
    free to use every app, and used by none."""

    name = "demo"
    verbose_name = "Demo and benchmarks"
