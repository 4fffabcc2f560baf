"""Test session: the real Postgres and Redis, and a real Celery worker process.

The worker is a separate ``celery worker`` process pointed at the test database
(pytest-django's ``test_<name>``) and the test broker. Tests that need it use the
``worker`` fixture and ``transaction=True``, so their rows are committed where the
worker can see them.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"


def database_url(db: dict) -> str:
    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


class WorkerProcess:
    """A `celery worker` child process (every queue unless told), with its log in test-artifacts/."""

    def __init__(self, db_url: str, queues: str = "default,gpu,api", env: dict | None = None):
        self.db_url = db_url
        self.queues = queues
        self.extra_env = env or {}
        self.proc: subprocess.Popen | None = None
        self.name = ""

    def start(self, timeout: float = 300) -> None:
        """Start the worker and return once it answers a ping: at once on a fast machine; the ceiling is for a busy
        one, where importing Django, Celery and torch in a new process can take a minute."""
        from webapp.celery import app

        self.name = f"test-{uuid.uuid4().hex[:8]}@localhost"
        env = {
            **os.environ,
            "DATABASE_URL": self.db_url,
            "PYTHONUNBUFFERED": "1",
            # Progress inside a batch several times a second, so tests that watch it advance see many readings
            # on a fast machine as on a slow one.
            "STYLEGAP_STEP_PROGRESS_EVERY_S": "0.25",
            **self.extra_env,
        }
        ARTIFACTS.mkdir(exist_ok=True)
        log = open(ARTIFACTS / "worker.log", "a")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "webapp",
                "worker",
                "-Q",
                self.queues,
                "--concurrency",
                "1",
                "--pool",
                "prefork",
                "--hostname",
                self.name,
                "--loglevel",
                "INFO",
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited with {self.proc.returncode}; see {ARTIFACTS}/worker.log")
            if app.control.ping(destination=[self.name], timeout=1.0):
                return
        self.stop()
        raise RuntimeError(f"celery worker did not answer a ping in {timeout} s; see {ARTIFACTS}/worker.log")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL the worker and its pool children, as a crash would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def pytest_configure(config):
    db = settings.DATABASES["default"]
    # tests/ratings/test_engine_on_sqlite.py runs the engine's own tests again on the embedded default.
    if db["ENGINE"] != "django.db.backends.postgresql" and os.environ.get("STYLEGAP_TESTS_ON_SQLITE") != "1":
        pytest.exit("The test suite runs on Postgres: use `make test` (it sets DATABASE_URL).", returncode=2)
    # The tests' OpenAI-protocol server (tests/inference_workers/chat_server.py) listens on http://127.0.0.1:
    # an allowed API host here and in the worker process, which inherits this environment.
    os.environ.setdefault("STYLEGAP_API_LOCAL_HOSTS", "127.0.0.1")
    settings.STYLEGAP_API_LOCAL_HOSTS = [h.strip() for h in os.environ["STYLEGAP_API_LOCAL_HOSTS"].split(",")]


@pytest.fixture(scope="session")
def broker():
    """The test broker, emptied of anything a previous run left behind."""
    from webapp.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=3)
    app.control.purge()
    return app


@pytest.fixture(scope="session")
def worker(django_db_setup, django_db_blocker, broker):
    """A real Celery worker process on the test database, for the whole session."""
    process = WorkerProcess(database_url(settings.DATABASES["default"]))
    process.start()
    yield process
    process.stop()


@pytest.fixture
def researcher(db):
    from django.contrib.auth import get_user_model

    from webapp.roles import ensure_researcher_group

    user = get_user_model().objects.create_user("rita", password="a-long-test-password", is_staff=True)
    user.groups.add(ensure_researcher_group())
    return user


@pytest.fixture
def researcher_client(client, researcher):
    client.force_login(researcher)
    return client
