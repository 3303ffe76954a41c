"""The security events kept in the database, and the permissions of the admin's Sessions
pages. (What a user model mixes in is in tokens.base_user.)"""

from django.conf import settings
from django.db import models


class SecurityEvent(models.Model):
    """A rare event worth an operator's eye, kept for TOKENS["SECURITY_EVENT_RETENTION"].
    Written only off the hot paths (never by a successful refresh or an authenticated
    request); never holds a token. Client text is stored escaped (tokens.text.printable)."""

    class Kind(models.TextChoices):
        REUSE = "reuse", "Refresh token reused"
        REVOKED_BY_ADMIN = "revoked_by_admin", "Sessions revoked by an admin"
        REVOKED_BY_COMMAND = "revoked_by_command", "Sessions revoked by a command"
        PASSWORD_CHANGED = "password_changed", "Password changed"
        LOCKED_OUT = "locked_out", "Locked out by the login limits"
        LOGOUT_ALL = "logout_all", "Logged out everywhere"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    created_at = models.DateTimeField(db_index=True)
    # The account; kept as null when it is deleted (the event stays, with its username).
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                             on_delete=models.SET_NULL, related_name="+")
    # The username then; for a lockout, the name that was tried (an account or not).
    username = models.CharField(max_length=150, blank=True)
    ip_address = models.CharField("IP address", max_length=64, blank=True)
    user_agent = models.CharField(max_length=256, blank=True)
    session_id = models.CharField(max_length=64, blank=True)
    sessions_ended = models.PositiveIntegerField(default=0)
    by = models.CharField(max_length=150, blank=True, help_text="The admin or command that "
                          "acted, or how the password was changed.")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["kind", "created_at"])]

    def __str__(self) -> str:
        when = f"{self.created_at:%Y-%m-%d %H:%M:%S}"
        return f"{self.get_kind_display()}: {self.username or '-'} ({when})"


class Session(models.Model):
    """No table: sessions live in the token store. The content type that the permissions to
    see and to revoke users' sessions in the admin belong to (superusers have both)."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("view_session", "Can view users' sessions"),
                       ("revoke_session", "Can revoke users' sessions")]
