"""The README's first command (`bin/run`, which `make run` calls) brings the whole site up.

Each case starts the real launcher in its own process group, on a free port and a fresh
state directory: gunicorn, a separate Celery worker and the demo study. It then checks
the pages, logs in as the printed researcher, presses the button that sends a task
from the web process, and watches the worker's result land in the database.
"""

import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
import uuid
from contextlib import closing

import psycopg2
import pytest
import redis
import requests

from tests.conftest import ARTIFACTS, REPO

SERVICE_VARS = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "TEST_DATABASE_URL", "TEST_BROKER_URL")
PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
DEMO_SLUG = "vicuna80-chatgpt-vs-vicuna13b"


def free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Launch:
    """One run of bin/run, its output collected in a log file."""

    def __init__(self, env: dict, log_name: str):
        ARTIFACTS.mkdir(exist_ok=True)
        self.log_path = ARTIFACTS / log_name
        self.port = int(env["PORT"])
        self.base = f"http://127.0.0.1:{self.port}"
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                ["bin/run"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def output(self) -> str:
        return self.log_path.read_text()

    def wait_until_serving(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"bin/run exited with {self.proc.returncode}:\n{self.output[-3000:]}")
            if "stylegap is running at" in self.output:
                try:
                    if requests.get(f"{self.base}/healthz", timeout=15).status_code == 200:
                        return
                except requests.ConnectionError:
                    pass
            time.sleep(0.5)
        pytest.fail(f"bin/run did not serve within {timeout} s:\n{self.output[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def leftover_processes(self) -> list[str]:
        """Processes of this launch's group still running after stop() (zombies are already dead)."""
        out = subprocess.run(["ps", "-o", "pid=,stat=,args=", "-g", str(self.proc.pid)], capture_output=True, text=True)
        return [line for line in out.stdout.splitlines() if line.split() and not line.split()[1].startswith("Z")]

    def credentials(self) -> dict[str, str]:
        return dict(re.findall(r"^Login: (\w+) / (\S+)$", self.output, re.MULTILINE))


def login(base: str, username: str, password: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{base}/admin/login/", timeout=10)
    response = session.post(
        f"{base}/admin/login/?next=/studies/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        timeout=10,
    )
    assert response.status_code == 200 and response.url.endswith("/studies/"), response.text[:500]
    return session


class SqliteState:
    def __init__(self, var_dir):
        self.path = var_dir / "stylegap.sqlite3"

    def execute(self, sql: str) -> list[tuple]:
        with closing(sqlite3.connect(self.path, timeout=30)) as conn, conn:
            return conn.execute(sql).fetchall()


class PostgresState:
    def __init__(self, url: str):
        self.url = url

    def execute(self, sql: str) -> list[tuple]:
        with closing(psycopg2.connect(self.url)) as conn, conn, conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else []


@pytest.fixture
def launch_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    env.update(PORT=str(free_port()), STYLEGAP_VAR_DIR=str(tmp_path / "var"), STYLEGAP_HTTPS="0")
    return env


@pytest.fixture
def postgres_and_redis(launch_env):
    """A fresh Postgres database and an empty Redis database for one launch."""
    name = f"stylegap_run_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(PG_ADMIN)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    broker = "redis://127.0.0.1:6379/14"
    redis.Redis.from_url(broker).flushdb()
    url = f"postgres://postgres@127.0.0.1:5432/{name}"
    yield {**launch_env, "DATABASE_URL": url, "REDIS_URL": broker}, PostgresState(url)
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def check_site(launch: Launch, state) -> None:
    base = launch.base
    assert requests.get(f"{base}/", timeout=10).status_code == 200
    assert requests.get(f"{base}/admin/login/", timeout=10).status_code == 200
    assert requests.get(f"{base}/healthz", timeout=10).json() == {"status": "ok", "database": "ok", "broker": "ok"}
    # Static files are served by the site itself.
    assert requests.get(f"{base}/static/webapp/site.css", timeout=10).status_code == 200

    creds = launch.credentials()
    assert set(creds) == {"admin", "researcher"}
    session = login(base, "researcher", creds["researcher"])
    page = session.get(f"{base}/studies/{DEMO_SLUG}/", timeout=10)
    assert page.status_code == 200 and "Vicuna-13B" in page.text
    assert state.execute("SELECT COUNT(*) FROM ratings_comparison")[0][0] == 80

    # Forget the style features, then ask for them from the web page: only the worker can refill them.
    state.execute("UPDATE inference_workers_response SET style_computed_at = NULL, n_headers = NULL RETURNING id")
    before = state.execute("SELECT COUNT(*) FROM django_celery_results_taskresult")[0][0]
    sent = session.post(
        f"{base}/studies/{DEMO_SLUG}/style-features/", headers={"X-CSRFToken": session.cookies["csrftoken"]}, timeout=10
    )
    assert sent.status_code == 200 and "queued for the worker" in sent.text

    deadline = time.monotonic() + 120
    while state.execute("SELECT COUNT(*) FROM inference_workers_response WHERE style_computed_at IS NULL")[0][0]:
        assert time.monotonic() < deadline, "the worker did not compute the style features"
        time.sleep(0.5)
    results = state.execute(
        "SELECT status, worker FROM django_celery_results_taskresult "
        "WHERE task_name = 'inference_workers.tasks.compute_style_features' ORDER BY id"
    )
    assert len(results) > before
    status, worker = results[-1]
    assert status == "SUCCESS" and worker.startswith("stylegap@")


def test_main_command_on_the_embedded_default(launch_env, tmp_path):
    launch = Launch(launch_env, "run-embedded.log")
    try:
        launch.wait_until_serving()
        assert "embedded SQLite" in launch.output and "embedded filesystem queue" in launch.output
        check_site(launch, SqliteState(tmp_path / "var"))
    finally:
        launch.stop()
    assert launch.leftover_processes() == []

    # A second run reuses what is there: no new rows, no recomputation.
    again = Launch(launch_env, "run-embedded-again.log")
    try:
        again.wait_until_serving()
        assert "80 comparisons (0 new), 0 answers imported now" in again.output
        assert "all answers done already" in again.output
        assert again.credentials() == launch.credentials()
    finally:
        again.stop()
    assert again.leftover_processes() == []


def test_main_command_on_postgres_and_redis(postgres_and_redis):
    env, state = postgres_and_redis
    launch = Launch(env, "run-postgres.log")
    try:
        launch.wait_until_serving()
        assert "Database: postgres://" in launch.output and "broker: redis://" in launch.output
        check_site(launch, state)
    finally:
        launch.stop()
    assert launch.leftover_processes() == []
