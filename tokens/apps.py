from django.apps import AppConfig


class TokensConfig(AppConfig):
    name = "tokens"
    verbose_name = "Tokens"

    def ready(self) -> None:
        # Registers the system checks and the OpenAPI extension. The runtime guard
        # against silent stores lives in tokens.store, which re-checks on every use.
        from tokens import checks, schema  # noqa: F401
