"""What the user model mixes in so that sessions survive a re-hash of the same password."""

from django.contrib.auth.hashers import check_password

from tokens.exceptions import StoreUnavailable


class SessionsSurviveRehash:
    """Mix into the user model, before AbstractUser or AbstractBaseUser.

    Sessions end when the stored password hash changes, by whatever path (admin, shell, raw
    SQL). Django also rewrites the hash of an unchanged password when it checks one under
    an older work factor or hasher (every feature release raises PBKDF2's iterations): that
    re-hash must end no session, so the sessions learn the new hash before it is saved.
    """

    def check_password(self, raw_password: str) -> bool:
        def setter(raw: str) -> None:
            from tokens import services

            old_hash = self.password
            self.set_password(raw)
            self._password = None  # a re-hash is no password change (as in Django's setter)
            try:
                services.keep_sessions_through_rehash(user_id=self.pk, old_hash=old_hash,
                                                      new_hash=self.password)
            except StoreUnavailable:
                self.password = old_hash  # re-hash on a later login instead
                return
            self.save(update_fields=["password"])

        return check_password(raw_password, self.password, setter)
