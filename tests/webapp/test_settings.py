"""Configuration comes from the environment; with none, an embedded default that needs no server."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

SERVICE_VARS = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")


def manage(*args, env, check=True):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=check,
        timeout=180,
    )


@pytest.fixture
def embedded_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    env["STYLEGAP_VAR_DIR"] = str(tmp_path / "var")
    return env


def test_embedded_default_is_sqlite_wal_with_the_database_rules(embedded_env):
    manage("migrate", "--noinput", "-v0", env=embedded_env)
    probe = subprocess.run(
        [sys.executable, "tests/webapp/embedded_probe.py"],
        cwd=REPO,
        env=embedded_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr
    report = json.loads(probe.stdout.strip().splitlines()[-1])
    assert report["vendor"] == "sqlite"
    assert report["journal_mode"] == "wal"
    assert report["broker"].startswith("filesystem://")
    assert report["rules"] == {
        "duplicate_response": True,
        "responses_differ": True,
        "same_prompt": True,
        "missing_response": True,
        "shown_response_kept": True,
        "one_vote_per_assignment": True,
        "one_vote_per_rater_comparison": True,
    }
    assert report["begin_took_write_lock"] is True
    # The generated secret key stays private beside the embedded database.
    key = embedded_env["STYLEGAP_VAR_DIR"] + "/secret_key"
    assert oct(os.stat(key).st_mode & 0o777) == "0o600"


PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "k3y-" + "x9Qz" * 16,
    "ALLOWED_HOSTS": "eval.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://eval.example.org",
    "STYLEGAP_HTTPS": "1",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/stylegap",
}


def test_check_deploy_is_clean_under_production_settings(embedded_env):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env={**embedded_env, **PRODUCTION}, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_flags_plain_http(embedded_env):
    env = {**embedded_env, **PRODUCTION, "STYLEGAP_HTTPS": "0"}
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env, check=False)
    assert result.returncode != 0
    assert "SESSION_COOKIE_SECURE" in result.stderr + result.stdout


def test_bad_boolean_is_refused_with_its_name(embedded_env):
    result = manage("check", env={**embedded_env, "DEBUG": "maybe"}, check=False)
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr
