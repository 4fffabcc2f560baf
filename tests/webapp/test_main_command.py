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
from django.conf import settings

from tests.chromium import SCREENSHOTS
from tests.chromium import launch as launch_chromium
from tests.conftest import ARTIFACTS, REPO

CONVERTED_DIR = settings.STYLEGAP_CONVERTED_DIR
SERVICE_VARS = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "TEST_DATABASE_URL", "TEST_BROKER_URL")
PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
HUMAN_SLUG = "vicuna80-human-votes"
LIVE_SLUG = "vicuna80-live-smollm2-vs-chatgpt"
# Small enough for CI: short SmolLM2 answers and a 10-question NQ-open subset.
DEMO_ENV = {"STYLEGAP_DEMO_MAX_NEW_TOKENS": "24", "STYLEGAP_DEMO_NQ_SUBSET": "10"}


# Waits end as soon as the awaited thing is there. They give up only when nothing has advanced for
# STALL_S (a wedged launch), or after CEILING_S in all: generous bounds, so a busy machine is not a failure.
STALL_S = 900
CEILING_S = 3 * 3600


def wait_on_progress(done, progress, what: str, detail=lambda: "") -> None:
    """Poll ``done()`` until it is true, while ``progress()`` (a count, a length) keeps changing."""
    started = last_change = time.monotonic()
    seen = progress()
    while not done():
        now = time.monotonic()
        current = progress()
        if current != seen:
            seen, last_change = current, now
        if now - last_change > STALL_S or now - started > CEILING_S:
            pytest.fail(f"{what}: no progress for {now - last_change:.0f} s (at {seen!r}).\n{detail()}")
        time.sleep(0.5)


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

    def wait_until_serving(self) -> None:
        """Until the demo is ready, for as long as bin/run's output keeps advancing (install, set-up, progress bars)."""

        def ready():
            if self.proc.poll() is not None:
                pytest.fail(f"bin/run exited with {self.proc.returncode}:\n{self.output[-3000:]}")
            if "stylegap is running at" in self.output:
                try:
                    return requests.get(f"{self.base}/healthz", timeout=15).status_code == 200
                except requests.ConnectionError:
                    return False
            return False

        wait_on_progress(ready, lambda: len(self.output), "bin/run's demo", self.output_tail)

    def output_tail(self) -> str:
        return self.output[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def leftover_processes(self, settle: float = 90) -> list[str]:
        """Processes of this launch's group still running after stop() (zombies are already dead).

        A process already tearing down when bin/run returned (on a busy machine, a gunicorn worker whose
        memory is freed but which has not been reaped yet, shown as "[gunicorn]") gets ``settle`` seconds
        to go; one that is still there after that is a leftover.
        """
        deadline = time.monotonic() + settle
        while True:
            out = subprocess.run(
                ["ps", "-o", "pid=,stat=,args=", "-g", str(self.proc.pid)], capture_output=True, text=True
            )
            alive = [line for line in out.stdout.splitlines() if line.split() and not line.split()[1].startswith("Z")]
            if not alive or time.monotonic() > deadline:
                return alive
            time.sleep(0.5)

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
    # SmolLM2's GGUF file, as converted by the test session, is read rather than converted again (as on a machine
    # that ran stylegap before): converting it from nothing is tests/inference_workers/test_gguf_cache.py's part,
    # and bench/first_run.sh times a first run on a fresh machine.
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    env.update(
        PORT=str(free_port()),
        STYLEGAP_VAR_DIR=str(tmp_path / "var"),
        STYLEGAP_HTTPS="0",
        STYLEGAP_CONVERTED_DIR=str(CONVERTED_DIR),
        **DEMO_ENV,
    )
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
    # Answers of 8 tokens: this case is about the services, and the embedded one generates the answers the tour
    # screenshots show.
    env = {**launch_env, "DATABASE_URL": url, "REDIS_URL": broker, "STYLEGAP_DEMO_MAX_NEW_TOKENS": "8"}
    yield env, PostgresState(url)
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def check_demo_data(state) -> None:
    """The story the first command tells: real votes, SmolLM2's real answers, real substance scores."""
    human = f"SELECT id FROM ratings_study WHERE slug = '{HUMAN_SLUG}'"
    n_models = state.execute(f"SELECT COUNT(*) FROM ratings_study_language_models WHERE study_id = ({human})")
    assert n_models[0][0] in (8, 9)
    n_votes = state.execute(
        f"SELECT COUNT(*) FROM ratings_vote v JOIN ratings_comparison c ON v.comparison_id = c.id "
        f"WHERE c.study_id = ({human})"
    )
    assert n_votes[0][0] >= 6720
    smollm2 = "SELECT id FROM inference_workers_languagemodel WHERE name = 'smollm2-135m-instruct'"
    answered = state.execute(
        f"SELECT COUNT(DISTINCT r.prompt_id) FROM inference_workers_response r "
        f"JOIN inference_workers_prompt p ON r.prompt_id = p.id "
        f"JOIN inference_workers_promptset s ON p.prompt_set_id = s.id "
        f"WHERE s.name = 'vicuna-80' AND r.model_id = ({smollm2}) AND r.text <> ''"
    )
    assert answered[0][0] == 80
    live = f"SELECT id FROM ratings_study WHERE slug = '{LIVE_SLUG}'"
    assert (
        state.execute(f"SELECT COUNT(*) FROM ratings_comparison WHERE study_id = ({live}) AND NOT is_gold")[0][0] == 80
    )
    runs = state.execute(
        f"SELECT status, accuracy, n_items FROM inference_workers_benchmarkrun "
        f"WHERE model_id = ({smollm2}) AND benchmark = 'nq_open' AND NOT published"
    )
    assert len(runs) == 1 and runs[0][0] == "succeeded" and runs[0][2] == 10 and runs[0][1] is not None
    published = state.execute("SELECT COUNT(*) FROM inference_workers_benchmarkrun WHERE published")
    assert published[0][0] >= 1


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
    page = session.get(f"{base}/studies/{HUMAN_SLUG}/", timeout=10)
    assert page.status_code == 200 and "Vicuna-13B" in page.text
    check_demo_data(state)

    # The printed rater link opens the live study for an anonymous rater.
    rater_link = re.search(r"^Rater link \(live study\): (\S+)$", launch.output, re.MULTILINE).group(1)
    assert requests.get(rater_link, timeout=10).status_code == 200

    # Forget the style features, then ask for them from the web page: only the worker can refill them.
    chosen = "SELECT id FROM inference_workers_languagemodel WHERE name IN ('gpt4', 'vicuna-13b')"
    state.execute(f"UPDATE inference_workers_response SET style_computed_at = NULL WHERE model_id IN ({chosen})")
    style_results = (
        "SELECT status, worker FROM django_celery_results_taskresult "
        "WHERE task_name = 'inference_workers.tasks.compute_style_features' ORDER BY id"
    )
    before = len(state.execute(style_results))
    sent = session.post(
        f"{base}/studies/{HUMAN_SLUG}/style-features/",
        headers={"X-CSRFToken": session.cookies["csrftoken"]},
        timeout=10,
    )
    assert sent.status_code == 200 and "queued for the worker" in sent.text

    unstyled = (
        f"SELECT COUNT(*) FROM inference_workers_response WHERE style_computed_at IS NULL AND model_id IN ({chosen})"
    )
    # Rows advancing: the count of responses still without style features falls as the worker stores them.
    wait_on_progress(
        lambda: state.execute(unstyled)[0][0] == 0 and len(state.execute(style_results)) > before,
        lambda: (state.execute(unstyled)[0][0], len(state.execute(style_results))),
        "the worker's style features",
    )
    results = state.execute(style_results)
    assert len(results) > before
    status, worker = results[-1]
    assert status == "SUCCESS" and worker.startswith("stylegap@")


DASHBOARD_PAGES = ("", "substance/", "matrix/", "activity/", "raters/")
SMOLLM2_LABEL = "SmolLM2-135M-Instruct (Q4_1 GGUF)"


def check_logins_come_first(output: str) -> None:
    """Logins and links are printed before the worker's long jobs, with a line on what is still generated."""
    first_progress = output.index("Worker: SmolLM2 answers")
    assert output.index("Login: researcher") < first_progress
    assert output.index("Rater link (live study)") < first_progress
    assert output.index("Dashboard: ") < first_progress
    assert output.index("Still being generated: SmolLM2's 80 answers for the live study") < first_progress


def live_study_pages(session: requests.Session, base: str) -> dict[str, str]:
    pages = {}
    for page in DASHBOARD_PAGES:
        response = session.get(f"{base}/studies/{LIVE_SLUG}/dashboard/{page}", timeout=30)
        assert response.status_code == 200, page
        pages[page] = response.text
    return pages


def vote_as_new_raters(rater_link: str, n: int) -> None:
    """n anonymous raters, each through the printed link: enter, consent, then one vote on the rating page."""
    for _ in range(n):
        rater = requests.Session()
        page = rater.get(rater_link, timeout=30)
        assert page.status_code == 200 and "/consent/" in page.url, page.url
        page = rater.post(page.url, data={"consent": "yes"}, timeout=30)
        action = re.search(r'<form method="post" action="([^"]+/vote/[^"]+)"', page.text)
        assert action, page.text[:2000]
        voted = rater.post(requests.compat.urljoin(page.url, action.group(1)), data={"choice": "left"}, timeout=30)
        assert voted.status_code == 200


def check_live_study(launch: Launch, state) -> None:
    """The live study is a real small experiment: its pages never claim a missing reference, and after
    five votes through the rater pages its style-vs-substance chart has SmolLM2's point with an interval."""
    base = launch.base
    session = login(base, "researcher", launch.credentials()["researcher"])
    for page, html in live_study_pages(session, base).items():
        assert "no reference model" not in html.lower(), page

    rater_link = re.search(r"^Rater link \(live study\): (\S+)$", launch.output, re.MULTILINE).group(1)
    vote_as_new_raters(rater_link, 5)
    live = f"SELECT id FROM ratings_study WHERE slug = '{LIVE_SLUG}'"
    # Votes the analysis counts: attention checks and excluded raters are left out.
    counted = state.execute(
        f"SELECT COUNT(*) FROM ratings_vote v JOIN ratings_comparison c ON v.comparison_id = c.id "
        f"JOIN ratings_rater r ON v.rater_id = r.id WHERE c.study_id = ({live}) AND NOT c.is_gold AND NOT r.excluded"
    )[0][0]
    assert counted >= 1
    snapshots = f"SELECT MAX(n_votes) FROM ratings_analysissnapshot WHERE study_id = ({live}) AND key = 'analysis'"
    computed = session.post(
        f"{base}/studies/{LIVE_SLUG}/dashboard/compute/",
        headers={"X-CSRFToken": session.cookies["csrftoken"]},
        timeout=30,
    )
    assert computed.status_code == 200
    wait_on_progress(
        lambda: (state.execute(snapshots)[0][0] or 0) >= counted,
        lambda: state.execute(snapshots)[0][0],
        "the live study's analysis snapshot",
    )
    pages = live_study_pages(session, base)
    for page, html in pages.items():
        assert "no reference model" not in html.lower(), page
    substance = pages["substance/"]
    assert "Human preference against factual accuracy" in substance
    assert f'class="interval" data-point="{SMOLLM2_LABEL}"' in substance
    assert f"{SMOLLM2_LABEL}: {counted} vote{'' if counted == 1 else 's'}" in substance


TOUR = SCREENSHOTS


def take_tour_screenshots(launch: Launch) -> None:
    """The README tour, taken from the site the first command serves: rating page, leaderboard, substance."""
    from playwright.sync_api import sync_playwright

    base = launch.base
    rater_link = re.search(r"^Rater link \(live study\): (\S+)$", launch.output, re.MULTILINE).group(1)
    TOUR.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        rater = browser.new_page(viewport={"width": 1280, "height": 900})
        rater.goto(rater_link)
        rater.check("input[type=checkbox]")
        rater.click("#start")
        rater.wait_for_selector("#progress")
        rater.screenshot(path=str(TOUR / "tour-rating-page.png"))  # the viewport, as a rater sees it

        staff = browser.new_page(viewport={"width": 1280, "height": 900})
        staff.goto(f"{base}/admin/login/?next=/studies/")
        staff.fill("#id_username", "researcher")
        staff.fill("#id_password", launch.credentials()["researcher"])
        staff.click("input[type=submit]")
        staff.wait_for_url(f"{base}/studies/")
        for name, path in (("leaderboard", "dashboard/"), ("style-vs-substance", "dashboard/substance/")):
            staff.goto(f"{base}/studies/{HUMAN_SLUG}/{path}")
            assert "7040 votes" in staff.inner_text("main")
            staff.screenshot(path=str(TOUR / f"tour-{name}.png"), full_page=True)
        browser.close()
    for shot in ("tour-rating-page", "tour-leaderboard", "tour-style-vs-substance"):
        assert (TOUR / f"{shot}.png").stat().st_size > 10_000


def test_main_command_on_the_embedded_default(launch_env, tmp_path):
    launch = Launch(launch_env, "run-embedded.log")
    try:
        launch.wait_until_serving()
        assert "embedded SQLite" in launch.output and "embedded filesystem queue" in launch.output
        check_logins_come_first(launch.output)
        check_site(launch, SqliteState(tmp_path / "var"))
        check_live_study(launch, SqliteState(tmp_path / "var"))
        take_tour_screenshots(launch)
    finally:
        launch.stop()
    assert launch.leftover_processes() == []

    # A second run reuses what is there: no new rows, no recomputation.
    again = Launch(launch_env, "run-embedded-again.log")
    try:
        again.wait_until_serving()
        assert "human votes (already there)" in again.output
        assert "SmolLM2's answers are all there" in again.output
        assert "NQ-open subset (done)" in again.output
        assert "Worker: SmolLM2 answers" not in again.output  # nothing generated again
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
