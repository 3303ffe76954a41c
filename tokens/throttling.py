"""DRF throttles for failed logins, per username and per client IP, counted in Redis.

Only failures count (recorded by services.record_login_failure, from Django's
user_login_failed signal); once an identity reaches its limit, it gets 429 with
Retry-After until the oldest counted failure leaves the window. The counts live in the
token store, so the limits hold across every API process.
"""

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from tokens import services


class LoginFailureThrottle(BaseThrottle):
    scope = ""

    def identity(self, request: Request) -> str | None:
        raise NotImplementedError

    def allow_request(self, request: Request, view) -> bool:
        ident = self.identity(request)
        self._wait = None if ident is None else services.login_wait(scope=self.scope, ident=ident)
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait


class UsernameLoginThrottle(LoginFailureThrottle):
    scope = "username"

    def identity(self, request: Request) -> str | None:
        username = request.data.get("username") if hasattr(request.data, "get") else None
        return services.throttle_username(username) if isinstance(username, str) else None


class IPLoginThrottle(LoginFailureThrottle):
    scope = "ip"

    def identity(self, request: Request) -> str | None:
        return self.get_ident(request)
