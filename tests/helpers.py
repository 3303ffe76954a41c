"""Helpers the tests share: the test password, API calls and assertions, cache settings,
looking at what the store holds, and racing requests from threads."""

import base64
import copy
import json
import threading
import time
from collections.abc import Callable, Iterable

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from django.conf import settings
from django.db import connection

from tests.servers import refused_port

PASSWORD = "correct horse battery staple"
OBTAIN = "/api/auth/token/"
REFRESH = "/api/auth/token/refresh/"
LOGOUT = "/api/auth/logout/"
LOGOUT_ALL = "/api/auth/logout-all/"
SESSIONS = "/api/auth/sessions/"
ME = "/api/auth/me/"
PASSWORD_URL = "/api/auth/password/"


def refresh(api, token):
    return api.post(REFRESH, {"refresh_token": token}, format="json")


def me(api, access):
    return api.get(ME, HTTP_AUTHORIZATION=f"Bearer {access}")


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) >= {"detail", "code"} and isinstance(body["detail"], str)
    assert body["code"] == code
    if status == 401:  # the README: every 401 carries the Bearer challenge
        assert response.get("WWW-Authenticate", "").startswith("Bearer"), response.headers


def caches_at(location: str) -> dict:
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = location
    return caches


def unreachable_caches() -> dict:
    """CACHES pointing the token cache at a loopback port that refuses connections."""
    return caches_at(f"redis://127.0.0.1:{refused_port()}/0")


def b64(data: dict | bytes) -> str:
    """Unpadded base64url of bytes, or of a dict as JSON: a JWT segment."""
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims_of(token: str) -> dict:
    """A token's payload as sent (sub, sid, jti, gen...), read without verifying it."""
    return pyjwt.decode(token, options={"verify_signature": False})


def redis_keys(conn, match: str = "*") -> list[bytes]:
    """Every key in Redis matching the glob `match`, found with SCAN."""
    return list(conn.scan_iter(match=match, count=1000))


def session_keys(conn, user_id: int | str | None = None, session_id: str = "*") -> list[bytes]:
    """Keys of stored sessions (`<prefix>:tokens:{<uid>}:s:<sid>`), of one user if given."""
    owner = "*" if user_id is None else f"*tokens:{{{user_id}}}"
    return redis_keys(conn, f"{owner}:s:{session_id}")


def index_keys(conn, user_id: int | str | None = None) -> list[bytes]:
    """Keys of the users' session indexes (`<prefix>:tokens:{<uid>}:sessions`), or one user's."""
    owner = "*" if user_id is None else f"*tokens:{{{user_id}}}"
    return redis_keys(conn, f"{owner}:sessions")


def index_members(conn, user_id: int | str | None = None) -> set[bytes]:
    """The session ids the index lists (the indexes of every user, unless one is given)."""
    return {sid for key in index_keys(conn, user_id) for sid in conn.smembers(key)}


def stored_hash(conn, key: bytes) -> dict[str, str]:
    """A Redis hash (a session's cur, prev, gen, ik...) as text; {} if the key is gone."""
    return {k.decode(): v.decode() for k, v in conn.hgetall(key).items()}


def session_record(conn, token: str) -> dict[str, str]:
    """The stored session of a token, as text; {} if the store has none."""
    payload = claims_of(token)
    keys = session_keys(conn, payload["sub"], payload["sid"])
    return stored_hash(conn, keys[0]) if keys else {}


def run_together(call: Callable, args: Iterable, *, timeout: float = 30) -> list:
    """call(arg) for each arg at once, a thread each behind a barrier; the results in order."""
    args = list(args)
    barrier = threading.Barrier(len(args))
    unfinished = object()
    results, errors = [unfinished] * len(args), []

    def run(i: int, arg) -> None:
        try:
            barrier.wait(timeout=timeout)
            results[i] = call(arg)
        except BaseException as error:  # re-raised below, in the test's own thread
            errors.append(error)
        finally:
            connection.close()  # each thread has its own database connection

    threads = [threading.Thread(target=run, args=(i, arg), daemon=True)
               for i, arg in enumerate(args)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    if errors:
        raise errors[0]
    assert all(result is not unfinished for result in results), "a racing call did not finish"
    return results


def rsa_pems() -> tuple[bytes, bytes]:
    """A new RSA key pair: (private PEM, public PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _pems(key)


def ed25519_pems() -> tuple[bytes, bytes]:
    """A new Ed25519 key pair: (private PEM, public PEM)."""
    return _pems(ed25519.Ed25519PrivateKey.generate())


def _pems(key) -> tuple[bytes, bytes]:
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def add_sessions(user, count: int, *, user_agent: str = "bulk") -> None:
    """`count` live sessions of `user`, written straight to the store, as that many logins
    would (a login each would spend a password check per session)."""
    from tokens import clock, store, users

    now_ms = clock.now_ms()
    for i in range(count):
        store.create_session(
            user_id=str(user.pk), session_id=f"bulk{i}", jti=f"jti{i}", generation=1,
            fingerprint=users.password_fingerprint(user), now_ms=now_ms,
            expires_at=now_ms // 1000 + 3600 + i, absolute_expires_at=now_ms // 1000 + 7200,
            user_agent=user_agent, ip_address="127.0.0.1")
