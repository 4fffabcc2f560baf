"""The rating engine's own tests, run again on the embedded default (SQLite), in a subprocess.

The lease, the vote and the rater lookup are plain SQL that both backends must accept
(ratings/engine/assignment.py, ratings/engine/hotpath.py); the rest of the suite runs on Postgres only.
"""

import os
import re
import subprocess
import sys

from tests.conftest import REPO

ENGINE_TESTS = [
    "tests/ratings/test_assignment.py",
    "tests/ratings/test_rater_path.py",
    "tests/ratings/test_blindness.py",
    "tests/ratings/test_quality.py",
]


def test_the_engine_tests_pass_on_the_embedded_sqlite_default(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL")}
    env |= {"STYLEGAP_TESTS_ON_SQLITE": "1", "STYLEGAP_VAR_DIR": str(tmp_path / "var")}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *ENGINE_TESTS],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", run.stdout).group(1))
    assert passed >= 40, run.stdout[-2000:]
    assert " failed" not in run.stdout and " error" not in run.stdout
