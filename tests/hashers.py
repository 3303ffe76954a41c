"""Two work factors of Django's own PBKDF2 hasher, cheap enough for tests: a real upgrade of
the work factor is going from the first to the second."""

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class PBKDF2Before(PBKDF2PasswordHasher):
    iterations = 1_000


class PBKDF2After(PBKDF2PasswordHasher):
    iterations = 2_000


class PBKDF2Slow(PBKDF2PasswordHasher):
    """Slow enough that correct logins sent together are still being checked together."""

    iterations = 200_000
