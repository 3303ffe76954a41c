"""The whole flow, logged at DEBUG: no token, signature, password or key in any log line."""

import base64
import logging
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.test import override_settings

from tests.helpers import (
    LOGOUT, ME, NEW_PASSWORD, OBTAIN, PASSWORD, PASSWORD_URL, REFRESH, SESSIONS,
    unreachable_caches,
)
from tokens.conf import token_settings

pytestmark = pytest.mark.django_db


def test_no_secret_reaches_the_logs(api, client, user, login, caplog):
    caplog.set_level(logging.DEBUG)
    secrets = [PASSWORD, NEW_PASSWORD, settings.SECRET_KEY,
               token_settings.SIGNING_KEY.hex(),
               base64.b64encode(token_settings.SIGNING_KEY).decode(),
               base64.urlsafe_b64encode(token_settings.SIGNING_KEY).decode().rstrip("=")]

    def remember(pair):
        for token in (pair["access_token"], pair["refresh_token"]):
            secrets.extend([token, token.split(".")[2]])
        return pair

    api.post(OBTAIN, {"username": "alice", "password": "wrong guess 1"}, format="json")
    client.post("/admin/login/", {"username": "alice", "password": "wrong guess 2"})
    secrets += ["wrong guess 1", "wrong guess 2"]
    first = remember(login(user, HTTP_USER_AGENT="pytest"))
    second = remember(api.post(REFRESH,
                               {"refresh_token": first["refresh_token"]}, format="json").json())
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {second['access_token']}"}
    api.get(ME, **bearer)
    api.get(SESSIONS, **bearer)
    third = remember(api.post(PASSWORD_URL,
                              {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
                              format="json", **bearer).json())
    api.post(REFRESH, {"refresh_token": third["refresh_token"]}, format="json")
    with time_machine.travel(timedelta(seconds=30)):  # reuse after the leeway: a warning
        api.post(REFRESH, {"refresh_token": third["refresh_token"]}, format="json")
    api.get(ME, HTTP_AUTHORIZATION=f"Bearer {third['access_token']}")
    with override_settings(CACHES=unreachable_caches()):
        api.post(REFRESH, {"refresh_token": second["refresh_token"]}, format="json")
    api.post(LOGOUT, {"refresh_token": first["refresh_token"]}, format="json")

    lines = [record.getMessage() for record in caplog.records]
    assert any("reuse" in line for line in lines), "the flow did not reach the reuse warning"
    assert any("unavailable" in line for line in lines), "the flow did not reach the outage"
    leaked = [(s[:12], line[:80]) for s in secrets for line in lines if s and s in line]
    assert leaked == []
    assert all(s not in caplog.text for s in secrets)
