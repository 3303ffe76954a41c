"""Login limits: wrong passwords are counted per username and address (per device for a
client that has logged in before), in the shared Redis, on every path that checks one."""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.test import Client, override_settings
from rest_framework.test import APIClient

from tests.helpers import (
    NEW_PASSWORD, OBTAIN, PASSWORD, PASSWORD_URL, assert_error, redis_keys, refresh,
    run_together, unreachable_caches,
)
from tokens.api.clients import DEVICE_COOKIE, DEVICE_COOKIES_MAX, SECURE_DEVICE_COOKIE

pytestmark = pytest.mark.django_db



def attempt(api, username, password="wrong", ip="192.0.2.1", **extra):
    return api.post(OBTAIN, {"username": username, "password": password}, format="json",
                    REMOTE_ADDR=ip, **extra)


def test_failures_per_username_are_limited_then_429(api, user):
    for i in range(5):
        assert attempt(api, "alice", ip=f"192.0.2.{i}").status_code == 401
    response = attempt(api, "alice", password=PASSWORD, ip="192.0.2.99")
    assert_error(response, 429, "throttled")
    assert 0 < int(response["Retry-After"]) <= 60


def test_username_throttle_ignores_case(api, user):
    for name in ("alice", "Alice", "ALICE", "aLiCe", "alicE"):
        attempt(api, name)
    assert attempt(api, "alice", password=PASSWORD).status_code == 429


def test_throttled_username_does_not_slow_other_users(api, user, make_user):
    make_user(username="bob")
    for i in range(5):
        attempt(api, "alice", ip=f"192.0.2.{i}")
    response = attempt(api, "bob", password=PASSWORD, ip="198.51.100.1")
    assert response.status_code == 200


def test_successful_logins_are_not_counted(api, user):
    for _ in range(8):
        assert attempt(api, "alice", password=PASSWORD).status_code == 200


def test_failures_per_ip_are_limited_across_usernames(api, user):
    for i in range(20):
        attempt(api, f"guess{i}", ip="203.0.113.5")
    assert attempt(api, "alice", password=PASSWORD, ip="203.0.113.5").status_code == 429
    assert attempt(api, "alice", password=PASSWORD, ip="203.0.113.6").status_code == 200


def test_the_limit_lifts_after_the_window(api, user):
    for _ in range(5):
        attempt(api, "alice")
    assert attempt(api, "alice", password=PASSWORD).status_code == 429
    with time_machine.travel(timedelta(seconds=61)):
        assert attempt(api, "alice", password=PASSWORD).status_code == 200


def test_a_budget_forgets_the_attempts_older_than_its_window(api, user, redis_conn):
    # Each budget keeps only its window's attempts: an older one counts for nothing and
    # is dropped from Redis when the next attempt is counted (no set grows while its key is
    # kept alive by attempts, and none is ever taken for full by old ones).
    for _ in range(3):
        attempt(api, "alice")
    keys = redis_keys(redis_conn, "*throttle*")
    assert [redis_conn.zcard(key) for key in keys] == [3, 3]  # the username's, the address's
    with time_machine.travel(timedelta(seconds=61)):
        assert attempt(api, "alice").status_code == 401
    assert [redis_conn.zcard(key) for key in keys] == [1, 1]


@override_settings(TOKENS={"LOGIN_FAILURES_PER_USERNAME": "2/h", "LOGIN_FAILURES_PER_IP": None})
def test_rates_come_from_token_settings(api, user):
    attempt(api, "alice", ip="192.0.2.1")
    attempt(api, "alice", ip="192.0.2.2")
    response = attempt(api, "alice", password=PASSWORD, ip="192.0.2.3")
    assert response.status_code == 429
    assert 3500 < int(response["Retry-After"]) <= 3600


def test_failed_admin_logins_count_too(client, api, user):
    for _ in range(5):
        client.post("/admin/login/", {"username": "alice", "password": "wrong"})
    assert attempt(api, "alice", password=PASSWORD).status_code == 429


def test_throttle_keys_expire_and_hold_no_username(api, user, redis_conn):
    attempt(api, "alice")
    keys = redis_keys(redis_conn, "*throttle*")
    assert len(keys) == 2  # one per username, one per IP
    for key in keys:
        assert b"alice" not in key
        assert 0 < redis_conn.ttl(key) <= 60


def test_x_forwarded_for_cannot_dodge_the_ip_limit(api, user):
    for i in range(20):
        api.post(OBTAIN, {"username": f"guess{i}", "password": "x"}, format="json",
                 REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}")
    response = api.post(OBTAIN, {"username": "alice", "password": PASSWORD}, format="json",
                        REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert response.status_code == 429


def test_a_lone_surrogate_in_the_username_is_a_400(api, user):
    response = api.post(OBTAIN, '{"username": "\\ud800", "password": "x"}',
                        content_type="application/json")
    assert_error(response, 400, "invalid")


def test_login_without_a_client_address_still_works(api, user):
    response = api.post(OBTAIN, {"username": "alice", "password": PASSWORD}, format="json",
                        REMOTE_ADDR=None)
    assert response.status_code == 200


@pytest.mark.django_db(transaction=True)
@override_settings(PASSWORD_HASHERS=["tests.hashers.PBKDF2Slow"])
def test_correct_logins_in_flight_behind_one_address_are_never_refused(make_user):
    names = [f"user{i}" for i in range(25)]
    for name in names:
        make_user(username=name)

    def log_in(name):
        return Client().post(OBTAIN, {"username": name, "password": PASSWORD},
                             content_type="application/json",
                             REMOTE_ADDR="203.0.113.50").status_code

    assert run_together(log_in, names, timeout=60) == [200] * len(names)


@pytest.mark.django_db(transaction=True)
def test_parallel_guesses_cannot_exceed_the_limit(user):
    def guess(i):
        return Client().post(OBTAIN, {"username": "alice", "password": f"no{i}"},
                             content_type="application/json",
                             REMOTE_ADDR=f"192.0.2.{i}").status_code

    assert sorted(run_together(guess, range(10))) == [401] * 5 + [429] * 5


@override_settings(PASSWORD_HASHERS=["tests.hashers.PBKDF2Slow"])
def test_parallel_guesses_from_a_known_device_cannot_exceed_its_limit(make_user):
    # The device's budget is held before the check, as the username's is.
    make_user(username="carol")
    device = APIClient()
    assert attempt(device, "carol", password=PASSWORD).status_code == 200
    cookie = device.cookies[DEVICE_COOKIE].value

    def guess(i):
        client = Client()
        client.cookies[DEVICE_COOKIE] = cookie
        return client.post(OBTAIN, {"username": "carol", "password": f"no{i}"},
                           content_type="application/json",
                           REMOTE_ADDR=f"192.0.2.{i}").status_code

    assert sorted(run_together(guess, range(10))) == [401] * 5 + [429] * 5


# --- The identity counted is the one the login checks (however it is spelled) ---

@pytest.mark.parametrize("spellings", [
    [" alice", "  alice", "alice\u2003", "\talice\n", "alice "],
    ["ALICE", "Alice", "\uff41\uff4c\uff49\uff43\uff45", "ali\u200bce", "ALİCE".replace("İ", "I")],
])
def test_every_spelling_of_a_username_shares_its_budget(user, spellings):
    client = APIClient()
    for name in spellings:
        assert attempt(client, name, ip="192.0.2.7").status_code == 401
    response = attempt(APIClient(), "alice", password=PASSWORD, ip="192.0.2.8")
    assert_error(response, 429, "throttled")


def test_a_username_sent_as_a_json_number_is_counted_as_that_username(make_user):
    make_user(username="12345")
    client = APIClient()
    for _ in range(5):
        assert attempt(client, 12345, ip="192.0.2.7").status_code == 401
    assert_error(attempt(client, "12345", password=PASSWORD, ip="192.0.2.8"), 429, "throttled")
    assert_error(attempt(client, 12345, password=PASSWORD, ip="192.0.2.9"), 429, "throttled")


def test_a_username_sent_as_a_json_number_logs_in_when_not_limited(make_user):
    make_user(username="12345")
    assert attempt(APIClient(), 12345, password=PASSWORD).status_code == 200


# --- Only password checks that ran and failed are counted ---

def test_requests_without_a_password_are_never_counted(user):
    client = APIClient()
    for body in ({"username": "alice"}, {"username": "alice", "password": ""},
                 {"username": "alice", "password": None}, {"username": None, "password": "x"},
                 {"username": ["alice"], "password": "x"}) * 3:
        assert client.post(OBTAIN, body, format="json").status_code == 400
    assert attempt(client, "alice", password=PASSWORD).status_code == 200


def test_other_methods_on_the_login_endpoint_are_never_counted(user):
    client = APIClient()
    for _ in range(6):
        assert client.get(OBTAIN, {"username": "alice"}).status_code == 405
        assert client.options(OBTAIN).status_code == 200
        assert client.head(OBTAIN).status_code == 405
        assert client.put(OBTAIN, {"username": "alice", "password": "x"},
                          format="json").status_code == 405
    assert attempt(client, "alice", password=PASSWORD).status_code == 200


def test_a_refused_attempt_counts_against_no_other_budget(user, make_user):
    make_user(username="bob")
    for _ in range(5):
        attempt(APIClient(), "alice", ip="192.0.2.1")
    # 25 tries at the locked username from a second address: refused, and not counted
    # against that address, whose budget (20) is all still there.
    for _ in range(25):
        assert attempt(APIClient(), "alice", ip="198.51.100.2").status_code == 429
    for i in range(20):
        assert attempt(APIClient(), f"nobody{i}", ip="198.51.100.2").status_code == 401
    assert attempt(APIClient(), "bob", password=PASSWORD, ip="198.51.100.2").status_code == 429


def test_a_refused_address_spends_nothing_of_the_username(user):
    for i in range(20):
        attempt(APIClient(), f"nobody{i}", ip="203.0.113.5")
    for _ in range(10):
        assert attempt(APIClient(), "alice", ip="203.0.113.5").status_code == 429
    # alice's own budget was never touched by those refusals.
    for _ in range(4):
        assert attempt(APIClient(), "alice", ip="198.51.100.3").status_code == 401
    assert attempt(APIClient(), "alice", password=PASSWORD, ip="198.51.100.4").status_code == 200


# --- A client that has logged in before keeps its own budget (device cookie) ---

def test_failures_elsewhere_never_lock_out_a_device_that_logged_in_before(user):
    device = APIClient()
    assert attempt(device, "alice", password=PASSWORD, ip="192.0.2.50").status_code == 200
    for i in range(30):
        attempt(APIClient(), "alice", ip=f"198.51.100.{i}")
    assert_error(attempt(APIClient(), "alice", password=PASSWORD, ip="198.51.100.99"),
                 429, "throttled")
    # Same address as the attacker even: the device is counted on its own.
    assert attempt(device, "alice", password=PASSWORD, ip="198.51.100.1").status_code == 200


def test_a_device_has_a_budget_of_its_own(user):
    device = APIClient()
    assert attempt(device, "alice", password=PASSWORD).status_code == 200
    for _ in range(5):
        assert attempt(device, "alice").status_code == 401
    assert_error(attempt(device, "alice", password=PASSWORD), 429, "throttled")
    # Its failures were not the username's: a new client may still try.
    assert attempt(APIClient(), "alice", password=PASSWORD, ip="192.0.2.60").status_code == 200


def test_a_device_cookie_vouches_only_for_the_usernames_that_logged_in_on_it(user, make_user):
    make_user(username="mallory")
    attacker = APIClient()
    assert attempt(attacker, "mallory", password=PASSWORD).status_code == 200
    for _ in range(5):
        assert attempt(attacker, "alice").status_code == 401
    assert_error(attempt(attacker, "alice"), 429, "throttled")


def test_a_device_cookie_of_a_lookalike_account_is_no_device_for_the_victim(user, make_user):
    # "Alice" is another account than "alice" (the lookup is exact), though both spellings
    # share one username budget: its owner's devices must not vouch for "alice".
    make_user(username="Alice")
    devices = [APIClient() for _ in range(3)]
    for i, device in enumerate(devices):
        assert attempt(device, "Alice", password=PASSWORD, ip=f"192.0.2.{i}").status_code == 200
    statuses = [attempt(device, "alice", ip="198.51.100.1").status_code
                for device in devices for _ in range(5)]
    assert statuses == [401] * 5 + [429] * 10


def test_a_forged_or_altered_device_cookie_is_no_device(user):
    device = APIClient()
    attempt(device, "alice", password=PASSWORD)
    genuine = device.cookies[DEVICE_COOKIE].value
    for i in range(5):
        attempt(APIClient(), "alice", ip=f"198.51.100.{i}")
    for forged in (genuine[:-2] + "xx", genuine.replace(":", ";", 1), "alice", "", "{}"):
        client = APIClient()
        client.cookies[DEVICE_COOKIE] = forged
        assert_error(attempt(client, "alice", password=PASSWORD), 429, "throttled")


def test_an_expired_device_cookie_is_no_device(user):
    device = APIClient()
    attempt(device, "alice", password=PASSWORD)
    for i in range(5):
        attempt(APIClient(), "alice", ip=f"198.51.100.{i}")
    with time_machine.travel(timedelta(days=366)):
        for i in range(5):
            attempt(APIClient(), "alice", ip=f"198.51.100.{i}")
        assert_error(attempt(device, "alice", password=PASSWORD), 429, "throttled")


def test_the_device_cookie_is_out_of_scripts_reach(user):
    client = APIClient()
    response = attempt(client, "alice", password=PASSWORD)
    cookie = response.cookies[DEVICE_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and not cookie["secure"]
    assert int(cookie["max-age"]) == 365 * 86400
    assert "alice" not in cookie.value
    # A request over HTTPS gets the host cookie, even where SESSION_COOKIE_SECURE is off.
    secure = APIClient().post(OBTAIN, {"username": "alice", "password": PASSWORD},
                              format="json", secure=True)
    assert secure.cookies[SECURE_DEVICE_COOKIE]["secure"] and DEVICE_COOKIE not in secure.cookies
    assert attempt(APIClient(), "alice").cookies.get(DEVICE_COOKIE) is None


# --- Device cookies tossed beside the real one (by a sibling subdomain, say) ---

@pytest.fixture(params=["http", "https"])
def scheme(request, settings):
    """The device cookie's name and the request's extras, over plain HTTP and over HTTPS with
    DJANGO_HTTPS=1 (which sets SESSION_COOKIE_SECURE)."""
    settings.SESSION_COOKIE_SECURE = request.param == "https"
    if request.param == "https":
        return SECURE_DEVICE_COOKIE, {"secure": True}
    return DEVICE_COOKIE, {}


def device_of(username, scheme, ip="192.0.2.50"):
    """The device cookie a successful login of `username` hands out."""
    name, extra = scheme
    response = attempt(APIClient(), username, password=PASSWORD, ip=ip, **extra)
    assert response.status_code == 200
    return response.cookies[name].value


def lock_out(username, scheme):
    """Exhaust the username's budget from elsewhere, as an attacker would."""
    for i in range(5):
        attempt(APIClient(), username, ip=f"198.51.100.{i}", **scheme[1])
    assert_error(attempt(APIClient(), username, password=PASSWORD, ip="198.51.100.99",
                         **scheme[1]), 429, "throttled")


def with_cookies(scheme, *values, password=PASSWORD, username="alice"):
    """A login sending a raw Cookie header with each value under the device cookie's name
    (as a browser does when several cookies of that name apply), with unrelated ones."""
    name, extra = scheme
    raw = "; ".join(["theme=dark", *(f"{name}={value}" for value in values), "lang=en"])
    return attempt(APIClient(), username, password=password, ip="198.51.100.1",
                   HTTP_COOKIE=raw, **extra)


TOSSED = {
    "junk first": lambda real, other: ["junk", real],
    "junk last": lambda real, other: [real, "junk"],
    "much junk around": lambda real, other: ["junk"] * 20 + [real] + [f"j{i}" for i in range(20)],
    "empty and quoted": lambda real, other: ["", '"junk"', f'"{real}"'],
    "another account's first": lambda real, other: [other, real],
    "another account's last": lambda real, other: [real, other],
    "forged first": lambda real, other: [real[:-2] + "xx", real],
    "forged last": lambda real, other: [real, real[:-2] + "xx"],
    "oversized first": lambda real, other: ["x" * 5000, real],
}


@pytest.mark.parametrize("tossed", TOSSED)
def test_a_device_stays_known_with_tossed_device_cookies_beside_its_own(scheme, user,
                                                                        make_user, tossed):
    make_user(username="mallory")
    real = device_of("alice", scheme)
    other = device_of("mallory", scheme, ip="203.0.113.7")
    lock_out("alice", scheme)
    assert with_cookies(scheme, *TOSSED[tossed](real, other)).status_code == 200


@pytest.mark.parametrize("tossed", ["junk", "forged", "another account's"])
def test_tossed_device_cookies_alone_are_no_device(scheme, user, make_user, tossed):
    make_user(username="mallory")
    real = device_of("alice", scheme)
    values = {"junk": ["junk"] * 3, "forged": [real[:-2] + "xx"],
              "another account's": [device_of("mallory", scheme, ip="203.0.113.7")]}[tossed]
    lock_out("alice", scheme)
    assert_error(with_cookies(scheme, *values), 429, "throttled")


def test_the_cookie_handed_out_beside_tossed_ones_is_the_devices_own(scheme, user, make_user):
    make_user(username="mallory")
    real = device_of("alice", scheme)
    other = device_of("mallory", scheme, ip="203.0.113.7")
    lock_out("alice", scheme)
    response = with_cookies(scheme, "junk", other, real)
    assert response.status_code == 200
    renewed = response.cookies[scheme[0]].value
    # The same device, so one budget: failures with the old cookie count for the new one.
    for _ in range(5):
        assert with_cookies(scheme, real, password="wrong").status_code == 401
    assert_error(with_cookies(scheme, renewed), 429, "throttled")


@pytest.mark.parametrize("order", ["own first", "own last"])
def test_a_login_beside_a_tossed_genuine_cookie_keeps_the_devices_accounts(scheme, user,
                                                                          make_user, order):
    # The device knows bob, not alice yet; a sibling tossed in mallory's genuine cookie. Which
    # of the two is the device's own cannot be told: alice's login must not make bob's lost.
    make_user(username="bob")
    make_user(username="mallory")
    bobs = device_of("bob", scheme)
    mallorys = device_of("mallory", scheme, ip="203.0.113.7")
    values = [bobs, mallorys] if order == "own first" else [mallorys, bobs]
    response = with_cookies(scheme, *values)
    assert response.status_code == 200
    lock_out("bob", scheme)
    assert with_cookies(scheme, response.cookies[scheme[0]].value,
                        username="bob").status_code == 200


def test_more_device_cookies_than_a_browser_sends_are_not_read(user):
    real = device_of("alice", (DEVICE_COOKIE, {}))
    lock_out("alice", (DEVICE_COOKIE, {}))
    too_many = ["junk"] * DEVICE_COOKIES_MAX + [real]
    assert_error(with_cookies((DEVICE_COOKIE, {}), *too_many), 429, "throttled")


@pytest.mark.parametrize("raw", ["tokens_device", "tokens_device=", "=tokens_device=x",
                                 'tokens_device="', 'tokens_device="\\x', "tokens_device;;;",
                                 "tokens_device=" + "a" * 10_000, "tokens_device=\x00"])
def test_odd_device_cookie_headers_are_no_device_and_no_error(user, raw):
    response = attempt(APIClient(), "alice", password=PASSWORD, HTTP_COOKIE=raw)
    assert response.status_code == 200 and response.cookies[DEVICE_COOKIE].value


@override_settings(SESSION_COOKIE_SECURE=True)  # what DJANGO_HTTPS=1 sets
def test_over_https_the_device_cookie_is_a_host_cookie_and_the_plain_name_no_device(user):
    response = attempt(APIClient(), "alice", password=PASSWORD, secure=True)
    cookie = response.cookies[SECURE_DEVICE_COOKIE]
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax"
    assert cookie["path"] == "/" and not cookie["domain"]
    assert DEVICE_COOKIE not in response.cookies
    https = (SECURE_DEVICE_COOKIE, {"secure": True})
    lock_out("alice", https)
    # The plain name, which a sibling subdomain can set, vouches for nothing over HTTPS, even
    # with a genuine value; beside the host cookie it changes nothing.
    plain = (DEVICE_COOKIE, {"secure": True})
    assert_error(with_cookies(plain, cookie.value), 429, "throttled")
    raw = f"{DEVICE_COOKIE}=junk; {SECURE_DEVICE_COOKIE}={cookie.value}; {DEVICE_COOKIE}=junk"
    assert attempt(APIClient(), "alice", password=PASSWORD, secure=True,
                   HTTP_COOKIE=raw).status_code == 200


def test_the_admin_login_finds_the_device_cookie_beside_tossed_ones(scheme, make_user):
    name, extra = scheme
    make_user(username="root", is_staff=True, is_superuser=True)
    response = Client().post("/admin/login/", {"username": "root", "password": PASSWORD},
                             **extra)
    assert response.status_code == 302
    real = response.cookies[name].value
    lock_out("root", scheme)
    admin = Client()
    response = admin.post("/admin/login/", {"username": "root", "password": PASSWORD},
                          HTTP_COOKIE=f"{name}=junk; {name}={real}; {name}=junk", **extra)
    assert response.status_code == 302 and "_auth_user_id" in admin.session


# --- Client addresses ---

@override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "NUM_PROXIES": 1})
@pytest.mark.parametrize("forwarded", ["", " ", "10.0.0.1, ", "10.0.0.1,", ",", "not-an-ip",
                                       "10.0.0.1, 300.1.1.1", "10.0.0.1, 192.0.2.1:8080"])
def test_a_blank_or_bad_forwarded_address_falls_back_to_the_proxy_address(user, forwarded):
    for i in range(20):
        assert attempt(APIClient(), f"nobody{i}", ip="203.0.113.9",
                       HTTP_X_FORWARDED_FOR=forwarded).status_code == 401
    response = attempt(APIClient(), "alice", password=PASSWORD, ip="203.0.113.9",
                       HTTP_X_FORWARDED_FOR=forwarded)
    assert_error(response, 429, "throttled")


@override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "NUM_PROXIES": 1})
def test_behind_one_proxy_each_forwarded_client_has_its_own_budget(user):
    for i in range(20):
        attempt(APIClient(), f"nobody{i}", ip="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.1")
    # Spelled otherwise, still the same client.
    assert attempt(APIClient(), "alice", password=PASSWORD, ip="10.0.0.1",
                   HTTP_X_FORWARDED_FOR="1.2.3.4, ::ffff:198.51.100.1").status_code == 429
    assert attempt(APIClient(), "alice", password=PASSWORD, ip="10.0.0.1",
                   HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 200


def test_ipv6_clients_are_counted_by_their_64(user):
    for i in range(20):
        attempt(APIClient(), f"nobody{i}", ip=f"2001:db8:1:2::{i + 1:x}")
    assert attempt(APIClient(), "alice", password=PASSWORD,
                   ip="2001:db8:1:2:ffff::1").status_code == 429
    assert attempt(APIClient(), "alice", password=PASSWORD,
                   ip="2001:db8:1:3::1").status_code == 200


# --- Every path that checks a password ---

def test_the_admin_login_obeys_the_limits_with_a_clear_message(client, make_user):
    make_user(username="root", is_staff=True, is_superuser=True)
    for name in ("root", " root", "ROOT", "root", "root"):
        response = client.post("/admin/login/", {"username": name, "password": "wrong"})
        assert response.status_code == 200 and "_auth_user_id" not in client.session
    response = client.post("/admin/login/", {"username": "root", "password": PASSWORD})
    assert "_auth_user_id" not in client.session
    assert "Too many failed login attempts" in response.content.decode()
    assert attempt(APIClient(), "root", password=PASSWORD).status_code == 429


def admin_login(client, username, password, ip="192.0.2.1"):
    """POST the admin login form; returns its errors (none: logged in)."""
    response = client.post("/admin/login/", {"username": username, "password": password},
                           REMOTE_ADDR=ip)
    if response.status_code == 302:
        return []
    return [str(error) for error in response.context["form"].non_field_errors()]


@pytest.mark.parametrize("account", [{"is_staff": False}, {"is_staff": True, "is_active": False},
                                     {"is_staff": False, "is_active": False}])
@pytest.mark.parametrize("password", [PASSWORD, "wrong"])
def test_an_account_the_admin_refuses_counts_its_right_password_like_a_wrong_one(
        make_user, account, password):
    # Else the throttle tells a right password of a non-staff account from a wrong one.
    make_user(username="bob", **account)
    errors = [admin_login(Client(), "bob", password) for _ in range(5)]
    invalid = ["Please enter the correct username and password for a staff account. "
               "Note that both fields may be case-sensitive."]
    assert errors == [invalid] * 5
    assert "Too many failed login attempts" in admin_login(Client(), "bob", password)[0]
    assert attempt(APIClient(), "bob", password=PASSWORD, ip="192.0.2.9").status_code == 429


@override_settings(AUTHENTICATION_BACKENDS=[
    "django.contrib.auth.backends.AllowAllUsersModelBackend"])
def test_a_backend_that_lets_inactive_users_in_tells_no_right_password_either(make_user):
    # Django's form would say "This account is inactive": only for the right password.
    make_user(username="bob", is_staff=True, is_active=False)
    errors = {tuple(admin_login(Client(), "bob", password)) for password in ("wrong", PASSWORD)}
    assert len(errors) == 1 and errors.pop()[0].startswith("Please enter the correct")
    for _ in range(3):
        admin_login(Client(), "bob", PASSWORD)
    assert "Too many failed" in admin_login(Client(), "bob", PASSWORD)[0]


@override_settings(TOKENS={"LOGIN_FAILURES_PER_USERNAME": None, "LOGIN_FAILURES_PER_IP": "3/m"})
def test_right_passwords_of_accounts_the_admin_refuses_count_against_the_address(make_user):
    make_user(username="root", is_staff=True, is_superuser=True)
    for name in ("bob", "carol", "dave"):
        make_user(username=name)
        assert admin_login(Client(), name, PASSWORD)[0].startswith("Please enter the correct")
    assert "Too many failed" in admin_login(Client(), "root", PASSWORD)[0]
    assert admin_login(Client(), "root", PASSWORD, ip="192.0.2.2") == []


def test_the_admin_login_gives_a_device_its_own_budget(make_user):
    from django.test import Client

    make_user(username="root", is_staff=True, is_superuser=True)
    admin = Client()
    response = admin.post("/admin/login/", {"username": "root", "password": PASSWORD})
    assert response.status_code == 302 and DEVICE_COOKIE in response.cookies
    admin.post("/admin/logout/")
    for i in range(10):
        attempt(APIClient(), "root", ip=f"198.51.100.{i}")
    response = admin.post("/admin/login/", {"username": "root", "password": PASSWORD})
    assert response.status_code == 302 and "_auth_user_id" in admin.session


def test_wrong_old_passwords_count_like_failed_logins(user, login):
    pair = login(user)
    thief = APIClient()
    thief.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access_token']}")
    for i in range(5):
        response = thief.post(PASSWORD_URL, {"old_password": f"guess{i}",
                                             "new_password": NEW_PASSWORD},
                              format="json", REMOTE_ADDR="198.51.100.7")
        assert_error(response, 400, "invalid")
    response = thief.post(PASSWORD_URL, {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
                          format="json", REMOTE_ADDR="198.51.100.7")
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    user.refresh_from_db()
    assert user.check_password(PASSWORD)  # unchanged, and no session ended
    assert refresh(APIClient(), pair["refresh_token"]).status_code == 200
    # And the login of a client without a device cookie is refused as well.
    assert attempt(APIClient(), "alice", password=PASSWORD, ip="192.0.2.70").status_code == 429


def test_the_admin_password_change_counts_wrong_old_passwords(client, make_user):
    root = make_user(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    form = {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    for i in range(5):
        response = client.post("/admin/password_change/", {"old_password": f"no{i}", **form})
        assert response.status_code == 200
    response = client.post("/admin/password_change/", {"old_password": PASSWORD, **form})
    assert "Too many failed login attempts" in response.content.decode()
    root.refresh_from_db()
    assert root.check_password(PASSWORD)


def test_the_admin_password_change_still_changes_the_password(client, make_user):
    root = make_user(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    response = client.post("/admin/password_change/",
                           {"old_password": PASSWORD, "new_password1": NEW_PASSWORD,
                            "new_password2": NEW_PASSWORD})
    assert response.status_code == 302
    root.refresh_from_db()
    assert root.check_password(NEW_PASSWORD)


@override_settings(CACHES=unreachable_caches())
def test_the_admin_login_says_so_when_the_store_is_down(client, make_user):
    make_user(username="root", is_staff=True, is_superuser=True)
    response = client.post("/admin/login/", {"username": "root", "password": PASSWORD})
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    assert "token store is unavailable" in response.content.decode()
