"""The rules of the token service, one module per flow; this package re-exports the API the
views, the admin and the commands call.

Services raise domain errors (tokens.exceptions) and know nothing of HTTP; they reach
Redis only through `tokens.store` and PyJWT only through `tokens.jwt`.

- `login`: credentials within the login limits, a new session.
- `refresh`: a refresh token spent once, reuse detected; logout.
- `access`: an access token's user, its session checked.
- `sessions`: list and end a user's sessions.
- `password`: the password change, and re-hashes that end nothing.
- `password_reset`: a reset link by email, and the password it sets.
- `maintenance`: purge and key reports for operators.
- `login_limits`, `security_events`: the rules of the limits, and the events kept.
"""

from tokens.services.access import authenticate_access
from tokens.services.login import check_login, obtain_pair, password_matches
from tokens.services.maintenance import key_usage, purge, purge_all
from tokens.services.password import change_password, keep_sessions_through_rehash
from tokens.services.refresh import logout, rotate_refresh
from tokens.services.sessions import (
                                      end_session,
                                      end_sessions_of_old_passwords,
                                      list_sessions,
                                      revoke_all_sessions,
                                      revoke_session,
)

__all__ = [
    "authenticate_access", "change_password", "check_login", "end_session",
    "end_sessions_of_old_passwords", "keep_sessions_through_rehash", "key_usage",
    "list_sessions", "logout", "obtain_pair", "password_matches", "purge", "purge_all",
    "revoke_all_sessions", "revoke_session", "rotate_refresh",
]
