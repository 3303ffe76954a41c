"""A correct password never stays counted, on any path that checks one (the API's login in
both modes, the admin's login, the old password of a successful change through the API in
both modes and through the admin), whichever budget held it (the username's, for a new
client; the device's, for one that logged in before); and a device's budget is its own per
account."""

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from tests.helpers import OBTAIN, PASSWORD, PASSWORD_URL, redis_keys

pytestmark = pytest.mark.django_db

COOKIE_LOGIN, COOKIE_PASSWORD = "/api/auth/cookie/token/", "/api/auth/cookie/password/"
APP = {"HTTP_X_REQUESTED_WITH": "app"}
ALLOWED_FAILURES = 5  # LOGIN_FAILURES_PER_USERNAME and _PER_DEVICE: "5/m"
RIGHT_ONES = ALLOWED_FAILURES + 3  # more than the budget: a leaked hold would also refuse one


@dataclass
class Account:
    """The account under test: its password now, and an access token of one of its sessions
    (the API's change needs one)."""

    user: object
    password: str = PASSWORD
    access: str = ""
    changes: int = 0

    def next_password(self) -> str:
        self.changes += 1
        return f"a much better passphrase {self.changes}"


def outcome(status: int, ok: int, wrong: int) -> str:
    return {ok: "ok", wrong: "wrong", 429: "throttled"}.get(status, f"status {status}")


def admin_outcome(response, ok_status: int = 302) -> str:
    if response.status_code == ok_status:
        return "ok"
    page = response.content.decode()
    return "throttled" if "Too many failed login attempts" in page else "wrong"


def api_login(account: Account, client, password: str, endpoint: str = OBTAIN) -> str:
    response = client.post(endpoint, {"username": account.user.username, "password": password},
                           format="json", **APP)
    if response.status_code == 200:
        account.access = response.json()["access_token"]
    return outcome(response.status_code, 200, 401)


def admin_login(account: Account, client, password: str) -> str:
    return admin_outcome(client.post("/admin/login/", {"username": account.user.username,
                                                       "password": password}))


def api_change(account: Account, client, password: str, endpoint: str = PASSWORD_URL) -> str:
    new = account.next_password()
    response = client.post(endpoint, {"old_password": password, "new_password": new},
                           format="json", HTTP_AUTHORIZATION=f"Bearer {account.access}", **APP)
    if response.status_code == 200:
        account.password, account.access = new, response.json()["access_token"]
    return outcome(response.status_code, 200, 400)


def admin_change(account: Account, client, password: str) -> str:
    account.user.refresh_from_db()
    client.force_login(account.user)  # a session of the admin's own (no device cookie)
    new = account.next_password()
    result = admin_outcome(client.post("/admin/password_change/", {
        "old_password": password, "new_password1": new, "new_password2": new}))
    if result == "ok":
        account.password = new
    return result


PATHS = {
    "API login": api_login,
    "cookie login": lambda account, client, password: api_login(account, client, password,
                                                                COOKIE_LOGIN),
    "admin login": admin_login,
    "API password change": api_change,
    "cookie password change": lambda account, client, password: api_change(
        account, client, password, COOKIE_PASSWORD),
    "admin password change": admin_change,
}


def counted(redis_conn) -> dict[str, int]:
    """The attempts every login-limit budget counts, by scope ({} when none counts any)."""
    counts: dict[str, int] = {}
    for key in redis_keys(redis_conn, "*:tokens:throttle:*"):
        if redis_conn.type(key) == b"zset":
            scope = key.split(b":throttle:")[1].split(b":")[0].decode()
            counts[scope] = counts.get(scope, 0) + redis_conn.zcard(key)
    return {scope: count for scope, count in counts.items() if count}


@pytest.fixture
def account(make_user) -> Account:
    user = make_user(username="alice", is_staff=True)  # staff: the admin's paths let it in
    return Account(user)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("budget", ["username", "device"])
def test_a_correct_password_never_stays_counted(account, redis_conn, path, budget):
    device = APIClient()  # a client that has logged in before: its device cookie
    assert api_login(account, device, PASSWORD) == "ok"
    client = (lambda: device) if budget == "device" else APIClient  # else a new client each
    check = PATHS[path]
    for _ in range(RIGHT_ONES):
        assert check(account, client(), account.password) == "ok"
    # The budget still has all its room: no attempt counted anywhere...
    assert counted(redis_conn) == {}
    # ... so all its wrong tries are still allowed before the 429.
    for _ in range(ALLOWED_FAILURES):
        assert check(account, client(), "not the password") == "wrong"
    assert counted(redis_conn)[budget] == ALLOWED_FAILURES
    assert check(account, client(), account.password) == "throttled"


# (the device and account whose budget is spent, the device and account checked after)
NEIGHBOURS = {
    "the same device, another account": (("laptop", "alice"), ("laptop", "bob")),
    "the same device, the other way round": (("laptop", "bob"), ("laptop", "alice")),
    "another device of the same account": (("laptop", "alice"), ("phone", "alice")),
}


@pytest.mark.parametrize("case", NEIGHBOURS)
def test_a_devices_budget_is_per_device_and_account(make_user, redis_conn, case):
    accounts = {name: Account(make_user(username=name)) for name in ("alice", "bob")}
    devices = {"laptop": APIClient(), "phone": APIClient()}
    # Both accounts have logged in on the laptop, alice on her phone too.
    for device, name in (("laptop", "alice"), ("laptop", "bob"), ("phone", "alice")):
        assert api_login(accounts[name], devices[device], PASSWORD) == "ok"
    (spent_device, spent), (device, name) = NEIGHBOURS[case]
    for _ in range(ALLOWED_FAILURES):
        assert api_login(accounts[spent], devices[spent_device], "wrong") == "wrong"
    assert api_login(accounts[spent], devices[spent_device], PASSWORD) == "throttled"
    assert counted(redis_conn) == {"device": ALLOWED_FAILURES}  # neither username's budget
    # The neighbour's budget is untouched: all its tries are left.
    assert api_login(accounts[name], devices[device], PASSWORD) == "ok"
    for _ in range(ALLOWED_FAILURES):
        assert api_login(accounts[name], devices[device], "wrong") == "wrong"
    assert api_login(accounts[name], devices[device], PASSWORD) == "throttled"
    device_keys = redis_keys(redis_conn, "*:tokens:throttle:device:*")
    assert sorted(redis_conn.zcard(key) for key in device_keys) == [ALLOWED_FAILURES] * 2
