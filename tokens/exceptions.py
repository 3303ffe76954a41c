"""Domain errors of the token service: a `code` the API promises and a message, nothing of
HTTP. The API layer (tokens.api.errors) gives each code its status, in one table."""


class TokenServiceError(Exception):
    """Base of all domain errors; `code` is what the API promises to clients."""

    code = "token_error"
    message = "Token error."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)


class InvalidCredentials(TokenServiceError):
    code = "invalid_credentials"
    message = "No active account found with the given credentials."


class TokenInvalid(TokenServiceError):
    code = "token_invalid"
    message = "Token is invalid."


class TokenExpired(TokenServiceError):
    code = "token_expired"
    message = "Token has expired."


class TokenReused(TokenServiceError):
    code = "token_reused"
    message = "Refresh token was already used; the session has been ended."


class SessionRevoked(TokenServiceError):
    code = "session_revoked"
    message = "The session has ended."


class UserInactive(TokenServiceError):
    code = "user_inactive"
    message = "User account is disabled."


class SessionNotFound(TokenServiceError):
    code = "not_found"
    message = "No such session."


class LoginThrottled(TokenServiceError):
    """Too many wrong passwords for this username or from this client, for now."""

    code = "throttled"
    message = "Too many failed login attempts."

    def __init__(self, *, wait: float, budgets: tuple[str, ...] = ()) -> None:
        self.wait = wait  # seconds until a new attempt may be counted
        self.budgets = budgets  # the scopes of the full budgets ("username", "ip", "device")
        super().__init__()


class ResetThrottled(LoginThrottled):
    """Too many password reset requests for this address or from this client, for now."""

    message = "Too many password reset requests."


class ResetLinkInvalid(TokenServiceError):
    """A reset link that is used, expired, altered, or names no user."""

    code = "invalid_reset_link"
    message = "The password reset link is invalid or has expired."


class StoreUnavailable(TokenServiceError):
    """Redis is down, timing out, or refused: never reported as a token problem."""

    code = "token_store_unavailable"
    message = "The token store is unavailable. Try again shortly."


class ReplicasBehind(StoreUnavailable):
    """Fewer replicas than TOKENS["REPLICA_ACKS"] acknowledged a write in time: it stands on
    the primary, what follows it was done, and the client's retry finds it."""


class StoreMisconfigured(StoreUnavailable):
    """The configured token cache would lose tokens silently; nothing is stored in it."""


class KeysMisconfigured(TokenServiceError):
    """TOKENS' keys cannot sign or verify (`check` says so too): a 503, so that clients keep
    their tokens (a 401 would log them out) until the keys are fixed; `reason` is for logs."""

    code = "token_keys_misconfigured"
    message = "The token service is misconfigured. Try again later."

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class WrongPassword(TokenServiceError):
    """The current password given (to change it) is not the user's."""

    code = "invalid"
    message = "The old password is not correct."
    field = "old_password"


class PasswordRejected(TokenServiceError):
    """A new password the validators (AUTH_PASSWORD_VALIDATORS) refuse; nothing changed."""

    code = "invalid"
    message = "The new password is not accepted."
    field = "new_password"

    def __init__(self, messages: list[str]) -> None:
        super().__init__()
        self.messages = messages
