"""The token's user: loaded by primary key on every request that carries a token, and the
password fingerprint that ties a session to the password it was born with."""

import weakref
from dataclasses import dataclass

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connections, models, router
from django.db.models import F, Value
from django.db.models.lookups import Exact
from django.utils.crypto import salted_hmac

from tokens.exceptions import PasswordRejected, TokenInvalid, UserInactive
from tokens.signing_keys import keyset


def password_fingerprint(user: AbstractBaseUser) -> str:
    """Changes whenever the password does; a session remembers the one it was born with."""
    return fingerprint(user.password)


def fingerprint(password_hash: str) -> str:
    """The fingerprint of a password hash under the current key."""
    return _fingerprint(password_hash, keyset().fingerprint_secrets[0])


def older_fingerprints(password_hash: str) -> tuple[str, ...]:
    """Its fingerprints under the fallback keys: sessions stamped under a key being rotated
    out are still recognised (and re-stamped at their next rotation)."""
    return tuple(_fingerprint(password_hash, secret)
                 for secret in keyset().fingerprint_secrets[1:])


def current_fingerprints(user_ids: set[str]) -> dict[str, tuple[str, ...]]:
    """Fingerprints (current key first, then fallbacks) of those users that exist and are
    active (any other session is dead)."""
    users = get_user_model()._default_manager.filter(pk__in=user_ids)
    return {str(user.pk): (password_fingerprint(user), *older_fingerprints(user.password))
            for user in users if user.is_active}


def _fingerprint(password_hash: str, secret: bytes) -> str:
    return salted_hmac("tokens.password", password_hash, secret=secret).hexdigest()[:16]


def active_user(user_id: str) -> AbstractBaseUser:
    """The token's user, by primary key; raises TokenInvalid if gone, UserInactive if inactive."""
    model = get_user_model()
    alias = router.db_for_read(model)
    pk = _primary_key(model, alias, user_id)
    query = _query(model, alias)
    row = query.fetch(pk)
    if row is None:
        raise TokenInvalid("Token user not found.")
    user = model.from_db(alias, query.names, row)
    if not user.is_active:
        raise UserInactive()
    return user


def active_password(user_id: str) -> str:
    """The password hash of the token's active user: all a refresh needs of the user row."""
    model = get_user_model()
    alias = router.db_for_read(model)
    pk = _primary_key(model, alias, user_id)
    row = _query(model, alias, ("password", "is_active")).fetch(pk)
    if row is None:
        raise TokenInvalid("Token user not found.")
    if not all(row[1:]):  # is_active, when the model has that field
        raise UserInactive()
    return row[0]


def _primary_key(model, alias: str, user_id: str):
    """The primary key a token's `sub` names; TokenInvalid if the pk column cannot hold it."""
    field = model._meta.pk
    try:
        pk = field.to_python(user_id)
    except (ValueError, ValidationError):
        raise TokenInvalid("Token user not found.") from None
    column = field
    while column.is_relation:  # a multi-table child's pk is its link to the parent's row
        column = column.target_field
    if isinstance(column, models.IntegerField):
        # A validly signed `sub` of 25 digits is still no user: refuse it here, or the
        # database driver raises OverflowError (a 500) binding it to the query.
        low, high = connections[alias].ops.integer_field_range(column.get_internal_type())
        if (low is not None and pk < low) or (high is not None and pk > high):
            raise TokenInvalid("Token user not found.")
    return pk


class _Key:
    """Stands for the primary key in a query compiled once: its place among the parameters."""


@dataclass(frozen=True)
class _Query:
    """The user row by primary key, as the ORM compiled it: SQL, parameters with the key's
    place, the attnames of the selected fields, and the converters of the connection."""

    connection: object
    key_field: object  # the model's pk
    sql: str
    params: tuple
    key_at: int
    names: list[str]
    fields: tuple[int, ...]  # the positions of the model's fields in a row (no annotations)
    converters: tuple[tuple[int, tuple, object], ...]

    def fetch(self, pk) -> list | None:
        """The converted values of the row with this primary key, or None if there is none."""
        params = list(self.params)
        params[self.key_at] = self.key_field.get_db_prep_value(pk, self.connection)
        with self.connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        values = list(row)
        for i, converters, expression in self.converters:
            for convert in converters:
                values[i] = convert(values[i], expression, self.connection)
        return [values[i] for i in self.fields]


# Per connection (one per thread), as the converters are its own methods; gone with it.
_QUERIES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _query(model, alias: str, names: tuple[str, ...] | None = None) -> _Query:
    """SELECT of the user row by primary key (of `names` only, those the model has),
    compiled once per connection by the ORM from the model's _default_manager: its filters
    apply, and a multi-table child's parent tables are joined. Every request with a token
    loads its user: the ORM's per-call compilation cost ~300-570 us for .get() on the bench
    machine, raw() ~75 us; one cursor.execute of the compiled SQL ~18 us."""
    connection = connections[alias]
    by_model = _QUERIES.setdefault(connection, {})
    key = (model, names)
    if key not in by_model:
        marker = _Key()
        queryset = model._default_manager.db_manager(alias).filter(Exact(F("pk"), Value(marker)))
        if names is not None:
            present = {field.attname for field in model._meta.concrete_fields}
            names = tuple(name for name in names if name in present)
            queryset = queryset.values_list(*names)
        compiler = queryset.query.get_compiler(alias)
        sql, params = compiler.as_sql()
        expressions = [expression for expression, _, _ in compiler.select]
        fields = tuple(compiler.klass_info["select_fields"] if compiler.klass_info
                       else range(len(expressions)))
        converters = tuple((i, tuple(found), expression) for i, (found, expression)
                           in compiler.get_converters(expressions).items())
        by_model[key] = _Query(
            connection, model._meta.pk, sql, tuple(params),
            next(i for i, p in enumerate(params) if p is marker),
            list(names) if names is not None
            else [expressions[i].target.attname for i in fields], fields, converters)
    return by_model[key]


def user_by_id(user_id: str) -> AbstractBaseUser | None:
    """The user with this primary key (as text), or None if it names none."""
    model = get_user_model()
    try:
        pk = _primary_key(model, router.db_for_read(model), user_id)
    except TokenInvalid:
        return None
    return model._default_manager.filter(pk=pk).first()


def set_new_password(user: AbstractBaseUser, password: str) -> None:
    """Set `password` on `user` (unsaved) if AUTH_PASSWORD_VALIDATORS accept it; else
    PasswordRejected, and the user is untouched."""
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise PasswordRejected(exc.messages) from None
    user.set_password(password)
