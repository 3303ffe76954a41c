"""Where a request comes from: its client address, user agent and device cookie, as the
login limits count them and sessions record them. The one place that reads
X-Forwarded-For and the device cookie."""

import ipaddress
import re
from http import cookies

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from rest_framework.exceptions import ValidationError
from rest_framework.settings import api_settings

from tokens.conf import token_settings
from tokens.text import header_text
from tokens.types import ClientInfo

USER_AGENT_MAX = 256
# Counted (and shown) when no address can be had at all: every such request shares one
# budget, rather than escaping the limit per address.
UNKNOWN_ADDRESS = "unknown"
# The Idempotency-Key header (IETF httpapi draft: a structured-field string, so quoted; bare
# values are taken too). At least 16 characters: it must be random per refresh attempt (a
# UUID4, say) for a retry to be told from a thief's replay.
IDEMPOTENCY_KEY_PATTERN = r"^[\x21\x23-\x5b\x5d-\x7e]{16,255}$"  # bare, as documented
IDEMPOTENCY_KEY = re.compile(r'"([\x21\x23-\x5b\x5d-\x7e]{16,255})"|([\x21\x23-\x5b\x5d-\x7e]{16,255})')
# Proof of an earlier successful login on this client (see tokens.services.login_limits). Over HTTPS
# a `__Host-` cookie (Secure, Path=/, no Domain): no sibling subdomain can set one, so none
# can toss a junk device cookie in front of the real one ("cookie tossing").
DEVICE_COOKIE = "tokens_device"
SECURE_DEVICE_COOKIE = "__Host-tokens_device"
# A browser sends its own device cookie, plus at most one per Path and partition that a
# sibling subdomain can toss over plain HTTP: a few dozen. Genuine ones are under 500 characters.
DEVICE_COOKIES_MAX = 64
DEVICE_COOKIE_MAX_LENGTH = 1024


def client_info(request: HttpRequest) -> ClientInfo:
    """The caller's user agent (as the client sent it, control characters neutralised),
    address and device cookies."""
    user_agent = header_text(request.META.get("HTTP_USER_AGENT", ""))[:USER_AGENT_MAX]
    return ClientInfo(user_agent=user_agent, ip_address=client_ip(request),
                      device_cookies=device_cookies(request))


def device_cookie_name(request: HttpRequest) -> str:
    """The device cookie's name: `__Host-` whenever cookies are Secure (DJANGO_HTTPS) or the
    request came over HTTPS."""
    return SECURE_DEVICE_COOKIE if _secure(request) else DEVICE_COOKIE


def device_cookies(request: HttpRequest) -> tuple[str, ...]:
    """Every device cookie the request carries, in order (request.COOKIES keeps only the
    last of a name, which may be one a sibling subdomain tossed): the login limits use the
    first that vouches for the account. Bounded in count and length."""
    name = device_cookie_name(request)
    found = []
    for chunk in request.META.get("HTTP_COOKIE", "").split(";"):
        key, sep, value = chunk.partition("=")
        # Parsed as Django parses cookies (django.http.cookie.parse_cookie).
        value = value.strip()
        if not sep or key.strip() != name or len(value) > DEVICE_COOKIE_MAX_LENGTH:
            continue
        found.append(cookies._unquote(value))
        if len(found) == DEVICE_COOKIES_MAX:
            break
    return tuple(found)


def idempotency_key(request: HttpRequest) -> str | None:
    """The request's Idempotency-Key, if it sent one; a malformed one is a 400."""
    value = request.META.get("HTTP_IDEMPOTENCY_KEY")
    if value is None:
        return None
    match = IDEMPOTENCY_KEY.fullmatch(value.strip())
    if match is None:
        raise ValidationError({"Idempotency-Key": [
            "Must be 16 to 255 visible ASCII characters, random for each attempt "
            "and sent again only on retries of that attempt."]})
    return match.group(1) or match.group(2)


def set_device_cookie(response: HttpResponse, request: HttpRequest, value: str) -> None:
    """Hand the client its device cookie: out of scripts' reach, sent back on logins only
    from this site, over HTTPS a `__Host-` cookie."""
    response.set_cookie(
        device_cookie_name(request), value,
        max_age=int(token_settings.DEVICE_COOKIE_AGE.total_seconds()),
        path="/", httponly=True, secure=_secure(request), samesite="Lax",
    )


def _secure(request: HttpRequest) -> bool:
    # The refresh cookie's switch (DJANGO_HTTPS), or the request itself: a host project
    # served over HTTPS without SESSION_COOKIE_SECURE gets the `__Host-` name too.
    return settings.SESSION_COOKIE_SECURE or request.is_secure()


def client_ip(request: HttpRequest) -> str:
    """The client's address: the entry DJANGO_NUM_PROXIES trusted proxies put in
    X-Forwarded-For, else REMOTE_ADDR. Never empty: a blank, missing or malformed forwarded
    entry falls back to REMOTE_ADDR (so it cannot turn the per-address limit off)."""
    remote = _address(request.META.get("REMOTE_ADDR"))
    proxies = api_settings.NUM_PROXIES or 0
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies and forwarded is not None:
        entries = forwarded.split(",")
        # The entry the outermost trusted proxy appended: what comes before it, the client
        # may have written itself.
        candidate = _address(entries[-min(proxies, len(entries))])
        if candidate:
            return candidate
    return remote or UNKNOWN_ADDRESS


def _address(value: str | None) -> str:
    # One spelling per address ('::FFFF:10.0.0.1' is '10.0.0.1'); anything that is not an
    # address (a blank entry, a hostname, a port, control characters) is no address.
    try:
        ip = ipaddress.ip_address((value or "").strip())
    except ValueError:
        return ""
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return str(ip)
