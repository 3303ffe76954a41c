"""schemathesis against the project's own /api/schema/, on a real server, with a fixed budget."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.timeout(300)

SCHEMATHESIS = str(Path(sys.executable).with_name("st"))


def test_api_conforms_to_its_schema_and_never_answers_5xx(project):
    # The login limits off for this run (tests/system/settings.py): with them on, the login and
    # the password change answer 429 once 20 wrong passwords came from this address, and the
    # run would stop reaching the password checks.
    api = project.start_api(TOKENS_LOGIN_LIMITS="off")
    pair = api.login()
    cassette = project.directory / "schemathesis.yaml"
    result = subprocess.run(
        [SCHEMATHESIS, "run", f"{api.base}/api/schema/",
         "--max-examples", "30", "--seed", "1", "--request-timeout", "10",
         "--header", f"Authorization: Bearer {pair['access_token']}",
         # logout-all would end the session the rest of the run authenticates with.
         "--exclude-path", "/api/auth/logout-all/",
         # A wrong old password is a 400 that no schema can express.
         "--exclude-checks", "positive_data_acceptance",
         "--report", "vcr", "--report-vcr-path", str(cassette)],
        capture_output=True, text=True, timeout=280,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
    # No request of the run was refused by a login limit: every one reached its check.
    with cassette.open() as file:
        interactions = yaml.load(file, Loader=yaml.CSafeLoader)["http_interactions"]
    statuses = [i["response"]["status"]["code"] for i in interactions if i.get("response")]
    assert statuses and "429" not in statuses
