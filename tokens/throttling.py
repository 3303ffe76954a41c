"""DRF throttles for failed logins, per username and per client IP, counted in Redis.

Each login attempt is counted atomically before the password is checked, and uncounted
when the login succeeds (tokens.signals, on user_logged_in): so only failures stay
counted, and parallel guesses cannot slip past the limit. Once an identity reaches its
limit it gets 429 with Retry-After until the oldest counted failure leaves the window.
The counts live in the token store, so the limits hold across every API process.
"""

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from tokens import login_limits

# Where the attempts counted for a request are kept, on Django's HttpRequest (the object
# that user_logged_in and user_login_failed receive).
ATTEMPTS = "_token_login_attempts"


class LoginFailureThrottle(BaseThrottle):
    scope = ""

    def identity(self, request: Request) -> str | None:
        raise NotImplementedError

    def allow_request(self, request: Request, view) -> bool:
        attempts = request._request.__dict__.setdefault(ATTEMPTS, [])
        ident = self.identity(request)
        self._wait = None
        if ident is not None:
            attempt, self._wait = login_limits.reserve_login_attempt(scope=self.scope, ident=ident)
            if attempt is not None:
                attempts.append((self.scope, ident, attempt))
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait


class UsernameLoginThrottle(LoginFailureThrottle):
    scope = "username"

    def identity(self, request: Request) -> str | None:
        username = request.data.get("username") if hasattr(request.data, "get") else None
        return login_limits.throttle_username(username) if isinstance(username, str) else None


class IPLoginThrottle(LoginFailureThrottle):
    scope = "ip"

    def identity(self, request: Request) -> str | None:
        return self.get_ident(request) or None
