from django.utils import timezone

from tokens import services
from tokens.management.base import TokenCommand
from tokens.text import printable

COLUMNS = ("ID", "CREATED", "LAST USED", "EXPIRES", "USER AGENT", "IP ADDRESS")


class Command(TokenCommand):
    help = "List a user's live sessions."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        user = self.get_user(username)
        sessions = services.list_sessions(user=user)
        if not sessions:
            self.stdout.write(f"{username} has no live sessions.")
            return
        # The user agent and IP are whatever the client sent (the IP too, from X-Forwarded-For
        # behind a proxy): escaped, so no control or bidi character acts on the terminal.
        rows = [COLUMNS] + [
            (s.id, _when(s.created_at), _when(s.last_used_at), _when(s.expires_at),
             printable(s.user_agent[:40]) or "-", printable(s.ip_address) or "-")
            for s in sessions
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
        for row in rows:
            self.stdout.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def _when(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")
