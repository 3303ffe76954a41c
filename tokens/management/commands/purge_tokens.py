from django.core.management.base import CommandError

from tokens import services
from tokens.management.base import TokenCommand


class Command(TokenCommand):
    help = (
        "Remove what Redis TTLs cannot: sessions of deleted users or of an older password, "
        "index entries of ended sessions, records without expiry. With --all, end every "
        "session of every user. Touches only the token store's own keys."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Report, change nothing.")
        parser.add_argument("--batch-size", type=int, default=1000, metavar="N",
                            help="Keys per SCAN step (default 1000).")
        parser.add_argument("--all", action="store_true",
                            help="Emergency: end every session of every user.")
        parser.add_argument("--noinput", "--no-input", action="store_false", dest="interactive",
                            help="Do not ask for confirmation (with --all).")

    def handle(self, *args, dry_run, batch_size, all, interactive, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if all:
            self._end_everything(batch_size, dry_run, interactive)
            return
        self._batches, self._verbosity = 0, options["verbosity"]
        report = services.purge(batch_size=batch_size, dry_run=dry_run, progress=self._progress)
        verb = "Would remove" if dry_run else "Removed"
        self.stdout.write(
            f"Scanned {report.keys_scanned} keys. {verb} {report.dead_sessions} dead session(s) "
            f"and {report.stale_index_entries} stale index entries; "
            f"{'would restore' if dry_run else 'restored'} {report.expiries_restored} "
            f"missing expiries; left {report.unrecognised_keys} unrecognised key(s) alone."
        )

    def _end_everything(self, batch_size: int, dry_run: bool, interactive: bool) -> None:
        if dry_run:
            raise CommandError("--all cannot be a dry run; use list_sessions to look first.")
        if interactive:
            answer = input("This ends every session of every user. Type 'yes' to continue: ")
            if answer.strip().lower() != "yes":
                raise CommandError("Cancelled; nothing was changed.")
        count = services.purge_all(batch_size=batch_size, by="manage.py purge_tokens --all")
        self.stdout.write(f"Ended {count} session(s).")

    def _progress(self, report) -> None:
        # Quiet on small keyspaces; a line every 10 batches on large ones (every batch at -v 2).
        self._batches += 1
        if self._verbosity >= 2 or (self._verbosity and self._batches % 10 == 0):
            self.stderr.write(f"... scanned {report.keys_scanned} keys")
