"""What a user model mixes in, importable without the app's models (as Django's
`base_user`): sessions survive a re-hash of the same password."""

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
        raced = []

        def setter(raw: str) -> None:
            from tokens import services

            old_hash = self.password
            self.set_password(raw)
            self._password = None  # a re-hash is no password change (as in Django's setter)
            try:
                services.keep_sessions_through_rehash(user_id=self.pk, old_hash=old_hash,
                                                      new_hash=self.password)
            except StoreUnavailable:
                self.password = old_hash  # re-hash on a later check instead
                return
            # Only over the hash that was checked: a password changed (or re-hashed) meanwhile
            # must not be overwritten by a hash of the old password.
            rows = type(self)._default_manager.filter(pk=self.pk, password=old_hash)
            if not rows.update(password=self.password):
                raced.append(True)
                self.password = (type(self)._default_manager.filter(pk=self.pk)
                                 .values_list("password", flat=True).first() or "")

        correct = check_password(raw_password, self.password, setter)
        if correct and raced:
            return check_password(raw_password, self.password)  # only the stored hash counts
        return correct
