from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class TokensConfig(AppConfig):
    name = "tokens"
    verbose_name = "Tokens"

    def ready(self) -> None:
        # Registers the system checks, the OpenAPI extension and the receivers that end a deleted or deactivated user's sessions.
        # The runtime guard against silent stores lives in tokens.store (checked on use).
        from tokens import checks, receivers  # noqa: F401 (receivers connect on import)

        checks.register_checks()
        from tokens.api import schema  # noqa: F401


class AdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the login limits on its login and password change."""

    default = False  # "tokens" alone still means TokensConfig

    default_site = "tokens.sites.AdminSite"
