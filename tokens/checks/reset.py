"""The password reset: links that can only be built from configuration, and no email
backend that would keep them in a log."""


from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning
from django.http.request import validate_host

from tokens.conf import (
    token_settings,
)
from tokens.services.password_reset import (
    EmailBackendKind,
    email_backend_kind,
    reset_url_problem,
)


RESET_URL_HINT = ("Set TOKENS['PASSWORD_RESET_URL'] (DJANGO_PASSWORD_RESET_URL) to your frontend's "
                  "reset page, uid and token in the fragment: "
                  "'https://app.example.com/reset#{uid}/{token}'.")


def check_password_reset(app_configs=None, **kwargs) -> list[Error | Warning]:
    """Reset links come from an absolute configured URL, and go by email, never to a log."""
    return _reset_url_messages() + _email_backend_messages()


def _reset_url_messages() -> list[Error | Warning]:
    url = token_settings.PASSWORD_RESET_URL
    problem = reset_url_problem(url)
    if not url:
        return [Warning(f"{problem}: password reset requests are answered, but no email is "
                        "sent.", hint=RESET_URL_HINT, id="tokens.W021")]
    if problem:
        return [Error(f"{problem}: no reset email can be sent (a link is never built on the "
                      "requesting Host).", hint=RESET_URL_HINT, id="tokens.E020")]
    if _token_reaches_this_service(url):
        return [Warning(
            "TOKENS['PASSWORD_RESET_URL'] points at a host in ALLOWED_HOSTS with the token "
            "outside the fragment: opening the link would put the token in this service's "
            "access log.", hint=RESET_URL_HINT, id="tokens.W022")]
    return []


def _email_backend_messages() -> list[Error | Warning]:
    kind = email_backend_kind()
    if kind in (EmailBackendKind.WRITES, EmailBackendKind.MEMORY) and not settings.DEBUG:
        return [Error(
            f"EMAIL_BACKEND is {settings.EMAIL_BACKEND} with DEBUG off: every password reset "
            "link would be written to the console, a file or the process's memory, where "
            "whoever reads it can reset the account.",
            hint="Use an SMTP backend (DJANGO_EMAIL_HOST), or the dummy backend to send none.",
            id="tokens.E021")]
    if kind is EmailBackendKind.NOTHING:
        return [Warning(
            f"EMAIL_BACKEND is {settings.EMAIL_BACKEND}: password reset requests are "
            "answered, but no email is sent.",
            hint="Set DJANGO_EMAIL_HOST (and _PORT, _HOST_USER, _HOST_PASSWORD) for SMTP.",
            id="tokens.W020")]
    return []


def _token_reaches_this_service(url: str) -> bool:
    marker = "reset-token-marker"
    parts = urlsplit(url.format(uid="uid", token=marker))
    return marker not in parts.fragment and validate_host(parts.hostname or "",
                                                          settings.ALLOWED_HOSTS)
