from django.apps import AppConfig


class ConfigfileConfig(AppConfig):
    """Configuration as code: config_export writes the configuration as YAML, config_apply
    plans and applies a YAML file through the audited configuration services."""

    name = "configfile"
    verbose_name = "Configuration as code"
