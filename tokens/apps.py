from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class TokensConfig(AppConfig):
    name = "tokens"
    verbose_name = "Tokens"

    def ready(self) -> None:
        # Registers the system checks, the OpenAPI extension and the user lifecycle hooks.
        # The runtime guard against silent stores lives in tokens.store (checked on use).
        from tokens import checks, schema, signals  # noqa: F401


class AdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the login limits on its login and password change."""

    default = False  # "tokens" alone still means TokensConfig

    default_site = "tokens.admin_site.AdminSite"
