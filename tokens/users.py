"""The token's user: loaded by primary key on every request that carries a token, and the
password fingerprint that ties a session to the password it was born with."""

import functools
import weakref

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connections, models, router
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
    if _plain(model):
        connection = connections[alias]
        with connection.cursor() as cursor:
            cursor.execute(_select_by_pk(model, alias), [pk])
            row = cursor.fetchone()
        user = None if row is None else model.from_db(alias, *_from_row(model, connection, row))
    else:
        user = model._default_manager.db_manager(alias).filter(pk=pk).first()
    if user is None:
        raise TokenInvalid("Token user not found.")
    if not user.is_active:
        raise UserInactive()
    return user


@functools.lru_cache(maxsize=16)
def _plain(model) -> bool:
    """Whether the user model is read by one row of its own table through a plain default
    manager: then a raw SELECT built once is the ORM's own answer, without its per-call cost.
    A model with parents (multi-table inheritance) or a default manager of its own (one that
    hides some users, say) is read through that manager, as Django would."""
    manager = model._default_manager
    return (not model._meta.parents
            and type(manager).get_queryset is models.Manager.get_queryset
            and manager._queryset_class is models.QuerySet)


def _from_row(model, connection, row: tuple) -> tuple[list[str], list]:
    """The field names and values of a row of _select_by_pk(model), as the ORM would read
    them: the backend's and the fields' converters applied (dates, booleans, JSON...)."""
    names, converted = _reader(model, connection)
    values = list(row)
    for i, column, converters in converted:
        for convert in converters:
            values[i] = convert(values[i], column, connection)
    return names, values


# Per connection (one per thread), as the converters are its own methods; gone with it.
_READERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _reader(model, connection) -> tuple[list[str], list[tuple[int, object, tuple]]]:
    by_model = _READERS.setdefault(connection, {})
    if model not in by_model:
        found = []
        for i, field in enumerate(model._meta.concrete_fields):
            column = field.get_col(model._meta.db_table)
            converters = (*connection.ops.get_db_converters(column),
                          *field.get_db_converters(connection))
            if converters:
                found.append((i, column, converters))
        by_model[model] = [field.attname for field in model._meta.concrete_fields], found
    return by_model[model]


def active_password(user_id: str) -> str:
    """The password hash of the token's active user: all a refresh needs of the user row."""
    model = get_user_model()
    alias = router.db_for_read(model)
    pk = _primary_key(model, alias, user_id)
    names = ("password", "is_active")
    if _plain(model):
        with connections[alias].cursor() as cursor:
            cursor.execute(_select_by_pk(model, alias, names), [pk])
            row = cursor.fetchone()
    else:
        fields = [name for name in names
                  if any(f.attname == name for f in model._meta.concrete_fields)]
        row = (model._default_manager.db_manager(alias).filter(pk=pk)
               .values_list(*fields).first())
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
    if isinstance(field, models.IntegerField):
        # A validly signed `sub` of 25 digits is still no user: refuse it here, or the
        # database driver raises OverflowError (a 500) binding it to the query.
        low, high = connections[alias].ops.integer_field_range(field.get_internal_type())
        if (low is not None and pk < low) or (high is not None and pk > high):
            raise TokenInvalid("Token user not found.")
    return pk


@functools.lru_cache(maxsize=16)
def _select_by_pk(model, alias: str, names: tuple[str, ...] | None = None) -> str:
    # Every request with a token loads its user by primary key. Raw SQL built once skips
    # the ORM's per-call query compilation (~300-570 us for .get() on the bench machine);
    # a plain cursor also skips raw()'s own per-call work (~75 us against ~18 us).
    quote = connections[alias].ops.quote_name
    fields = [f for f in model._meta.concrete_fields if names is None or f.attname in names]
    if names is not None:
        fields.sort(key=lambda f: names.index(f.attname))
    columns = ", ".join(quote(field.column) for field in fields)
    return (f"SELECT {columns} FROM {quote(model._meta.db_table)} "
            f"WHERE {quote(model._meta.pk.column)} = %s")


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
