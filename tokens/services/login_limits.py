"""Login limits: how many wrong passwords may be tried, counted in the token store.

Every password check for someone not yet authenticated by it (the API login, the admin
login, the old password of a password change) runs inside `holding`. Only checks that ran
and failed stay counted; a request refused by a limit, or rejected before any password was
checked, counts nowhere.

Budgets (sliding windows, rates from TOKENS):
- A client holding a device cookie for this account (issued by an earlier successful login
  to it, OWASP's "device cookie") has a budget of its own, per device and account.
  Failures anywhere else never lock it out, so no third party can keep a user out of a
  browser or client they have logged in from before. Of several device cookies presented
  (a sibling subdomain can toss junk ones beside the real one over plain HTTP), the first
  that vouches for the account counts; the others are ignored.
- Any other client is counted against the username and against its address (IPv6 by /64).
  The username's budget holds an attempt while its password is checked (so parallel guesses
  cannot overshoot it); the address's counts only failures (so correct logins in flight
  behind one address never exhaust it; parallel guesses overshoot it by at most the number
  of requests in flight).

The username counted is the one the login checks, however it was spelled: the same trimming
and Unicode normalisation (NFKC) as Django's login forms, with case folded and invisible
format characters dropped, whatever JSON type it came as.
"""

import ipaddress
import secrets
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from django.conf import settings
from django.core import signing
from django.utils.crypto import salted_hmac

from tokens import clock, store
from tokens.conf import parse_rate, token_settings
from tokens.exceptions import LoginThrottled, ResetThrottled, StoreUnavailable

T = TypeVar("T")

DEVICE_SALT = "tokens.services.login_limits.device"
# How many usernames one device cookie remembers (a shared family computer, say).
DEVICE_USERS_MAX = 10


@dataclass(frozen=True)
class Hold:
    """A correct password's attempt, still held against its budgets: whoever writes next
    releases it in the same round trip (store.create_session), or calls release_quietly."""

    budgets: tuple[store.Budget, ...]
    attempt: str


def holding(*, username: object, ip_address: str, device_cookies: Sequence[str],
            check: Callable[[], T]) -> tuple[T, Hold | None]:
    """Run the password check `check` (a falsy result: wrong password) within the limits of
    this username and client; raises LoginThrottled, without running it, when over them.
    A correct password's attempt stays held (the Hold returned) until the caller releases
    it (release_quietly), so that a login releases it with its session's write."""
    budgets = _budgets(username, ip_address, device_cookies)
    if not budgets:
        return check(), None
    hold = Hold(tuple(budget for budget in budgets if budget.held),
                f"{clock.now_ms()}:{secrets.token_hex(8)}")
    try:
        refusal = store.reserve_login_attempt(budgets=budgets, attempt=hold.attempt,
                                              now_ms=clock.now_ms())
    except StoreUnavailable:
        release_quietly(hold)  # the script may have run, its reply lost
        raise
    if refusal is not None:
        raise LoginThrottled(wait=refusal.wait, budgets=refusal.scopes)
    try:
        result = check()
    except BaseException:
        release_quietly(hold)  # the check did not finish: it tried nothing
        raise
    if result:
        return result, hold
    store.record_login_failure(budgets=[b for b in budgets if not b.held],
                               attempt=hold.attempt, now_ms=clock.now_ms())
    return result, None


def count_reset_request(*, email: str, ip_address: str) -> None:
    """Count a password reset request against its email address (every spelling of it) and
    its client address; raises LoginThrottled, counting nothing, when over either limit.
    Every request counts, whether or not an account matches: nothing to release."""
    wanted = [("reset_email", username_identity(email), "PASSWORD_RESETS_PER_EMAIL"),
              ("reset_ip", address_identity(ip_address), "PASSWORD_RESETS_PER_IP")]
    budgets = [store.Budget(scope, ident, *rate)
               for scope, ident, setting in wanted
               if (rate := parse_rate(getattr(token_settings, setting)))]
    if not budgets:
        return
    attempt = f"{clock.now_ms()}:{secrets.token_hex(8)}"
    refusal = store.reserve_login_attempt(budgets=budgets, attempt=attempt,
                                          now_ms=clock.now_ms())
    if refusal is not None:
        raise ResetThrottled(wait=refusal.wait, budgets=refusal.scopes)


def release_quietly(hold: Hold | None) -> None:
    """Uncount a held attempt (a correct password, or a check that never ran)."""
    if not hold or not hold.budgets:
        return
    try:
        store.release_login_attempt(budgets=list(hold.budgets), attempt=hold.attempt)
    except StoreUnavailable:
        pass  # logged by the store; at worst one attempt stays counted for one window


def first_lockout(*, username: object) -> bool:
    """Whether a refusal by this username's budget is the first in its window: the account
    is then locked out (worth one security event per window, however many refusals)."""
    rate = parse_rate(token_settings.LOGIN_FAILURES_PER_USERNAME)
    if not rate:
        return False
    return store.first_lockout(ident=username_identity(username), window_seconds=rate[1],
                               now_ms=clock.now_ms())


def device_cookie(*, username: str, presented: Sequence[str]) -> str:
    """The device cookie to hand out after a successful login to the account named
    `username` (exactly): it keeps the id of the presented device cookie that vouched for
    it (else of any genuine one, never of junk) and the other accounts the genuine ones
    were trusted for (the vouching one's first, most recent first)."""
    genuine = [found for cookie in presented if (found := _read_device(cookie))]
    genuine.sort(key=lambda found: not _vouches(found, username))  # stable: first that vouched
    device = genuine[0][0] if genuine else secrets.token_urlsafe(16)
    # Every genuine one's accounts, since which is this client's own cannot always be told
    # (a sibling can toss in its own over plain HTTP): none of the client's is dropped for it.
    known = [account for _, accounts in genuine for account in accounts]
    accounts = list(dict.fromkeys([_account_digest(username), *known]))[:DEVICE_USERS_MAX]
    return signing.dumps({"d": device, "u": accounts}, salt=DEVICE_SALT, compress=False)


def username_identity(username: object) -> str:
    """The username as the limits count it: one budget for every spelling of one account."""
    text = unicodedata.normalize("NFKC", str(username))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf").strip().casefold()
    return unicodedata.normalize("NFKC", text)


def address_identity(address: str) -> str:
    """What the per-address limit counts: the address, or its /64 for IPv6, since one
    subscriber is routinely handed a whole /64 and could otherwise rotate through it."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _budgets(username: object, ip_address: str, cookies: Sequence[str]) -> list[store.Budget]:
    device = _trusted_device(cookies, username)
    if device:
        wanted = [("device", device, "LOGIN_FAILURES_PER_DEVICE", True)]
    else:
        wanted = [("username", username_identity(username), "LOGIN_FAILURES_PER_USERNAME", True),
                  # Counted after a failed check: correct logins in flight behind one address
                  # (a NAT, an office) never push it over its limit.
                  ("ip", address_identity(ip_address), "LOGIN_FAILURES_PER_IP", False)]
    budgets = []
    for scope, ident, setting, held in wanted:
        rate = parse_rate(getattr(token_settings, setting))
        if rate:
            budgets.append(store.Budget(scope, ident, *rate, held=held))
    return budgets


def _trusted_device(cookies: Sequence[str], username: object) -> str | None:
    """The budget key of the first device cookie that vouches for the account `username`
    names exactly (as the database looks it up: trimmed and NFKC, case kept), else None.
    Exactly, so that the owner of "Alice" gains nothing against "alice"."""
    name = unicodedata.normalize("NFKC", str(username)).strip()
    for cookie in cookies:
        found = _read_device(cookie)
        if found is not None and _vouches(found, name):
            return f"{found[0]}:{_account_digest(name)}"
    return None


def _vouches(device: tuple[str, list[str]], name: str) -> bool:
    # Under SECRET_KEY or a fallback: a key rotation leaves known devices known.
    return any(account in device[1] for account in _account_digests(name))


def _read_device(cookie: str) -> tuple[str, list[str]] | None:
    if not cookie:
        return None
    try:
        data = signing.loads(cookie, salt=DEVICE_SALT,
                             max_age=token_settings.DEVICE_COOKIE_AGE)
    except signing.BadSignature:
        return None  # forged, expired, or signed with a key since retired
    if not isinstance(data, dict):
        return None
    device, users = data.get("d"), data.get("u")
    if not isinstance(device, str) or not isinstance(users, list):
        return None
    return device, [u for u in users if isinstance(u, str)]


def _account_digest(username: str) -> str:
    # Keyed, not the username: the cookie is signed, not encrypted, and a plain hash could be
    # matched against likely usernames.
    return salted_hmac("tokens.services.login_limits.account", username).hexdigest()[:20]


def _account_digests(username: str) -> list[str]:
    secrets_ = (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ()))
    return [salted_hmac("tokens.services.login_limits.account", username, secret=secret).hexdigest()[:20]
            for secret in secrets_]
