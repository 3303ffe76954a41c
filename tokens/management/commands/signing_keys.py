from tokens import services
from tokens.management.base import TokenCommand


class Command(TokenCommand):
    help = ("The keys that sign and verify tokens, and how many live sessions each key's "
            "password fingerprints still stamp (a fallback stamping none can be removed once "
            "the refresh lifetime has passed since it stopped signing).")

    def handle(self, *args, **options):
        usage = services.key_usage()
        self.stdout.write(f"Algorithm: {usage.algorithm}")
        self.stdout.write(f"Signing key id: {usage.current_kid}")
        for kid in usage.fallback_kids:
            self.stdout.write(f"Fallback key id (verifies only): {kid}")
        current, *older = usage.stamped
        self.stdout.write(f"Sessions stamped under the current key: {current}")
        for position, count in enumerate(older, start=1):
            self.stdout.write(f"Sessions stamped under fallback {position}: {count}")
        self.stdout.write(f"Sessions no key recognises (purge_tokens removes them): "
                          f"{usage.unknown}")
