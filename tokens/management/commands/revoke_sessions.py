from django.core.management.base import CommandError

from tokens import services
from tokens.exceptions import SessionNotFound
from tokens.management.base import TokenCommand
from tokens.types import EndReason

BY = "manage.py revoke_sessions"  # as the security event names who acted


class Command(TokenCommand):
    help = "End all of a user's sessions, or one with --session."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--session", metavar="ID", help="End only this session.")

    def handle(self, *args, username, session=None, **options):
        user = self.get_user(username)
        if session is None:
            count = services.revoke_all_sessions(user_id=user.pk, reason=EndReason.COMMAND,
                                                 by=BY)
        else:
            try:
                services.revoke_session(user=user, session_id=session, reason=EndReason.COMMAND,
                                        by=BY)
            except SessionNotFound:
                raise CommandError(f"{username} has no live session {session!r}.") from None
            count = 1
        self.stdout.write(f"Revoked {count} session(s) of {username}.")
