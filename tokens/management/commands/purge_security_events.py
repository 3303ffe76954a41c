from tokens.conf import token_settings
from tokens.management.base import TokenCommand
from tokens.services import security_events


class Command(TokenCommand):
    help = ("Delete the security events older than TOKENS['SECURITY_EVENT_RETENTION'] "
            "(90 days unless set). Run it daily, like purge_tokens.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count, delete nothing.")

    def handle(self, *args, dry_run, **options):
        count = security_events.purge(dry_run=dry_run)
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(f"{verb} {count} security event(s) older than "
                          f"{token_settings.SECURITY_EVENT_RETENTION} (SECURITY_EVENT_RETENTION).")
