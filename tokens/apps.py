from django.apps import AppConfig


class TokensConfig(AppConfig):
    name = "tokens"
    verbose_name = "Tokens"

    def ready(self) -> None:
        # Registers the system checks, the OpenAPI extension and the user lifecycle hooks.
        # The runtime guard against silent stores lives in tokens.store (checked on use).
        from tokens import checks, schema, signals  # noqa: F401
