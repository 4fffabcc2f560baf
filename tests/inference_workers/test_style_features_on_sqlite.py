"""Style features on the embedded default (SQLite in WAL mode) while another process writes.

The end-to-end test of the main command waited for ever on the worker's style features: the task
read the responses through an open cursor (``.iterator()``) and wrote each batch of 500 while that
cursor, a read snapshot, was still open. Once anyone else had committed in between (a rater's
vote, beat's lease release), SQLite refused the write at once ("database is locked"; a stale
snapshot cannot become a writer, and no busy timeout helps) and the task failed.
Here a second connection commits while the features are computed, in a subprocess on SQLite.
"""

import os
import subprocess
import sys

from tests.conftest import REPO

SCRIPT = r"""
import os, sqlite3
import django
django.setup()
from django.conf import settings
from django.core.management import call_command
call_command("migrate", verbosity=0)
from inference_workers import actions
from inference_workers.models import DecodingConfig, LanguageModel, Prompt, PromptSet, Response
from inference_workers.actions import imported_decoding_config, imported_model

model = imported_model("m")
ps = PromptSet.objects.create(name="p", title="p")
Prompt.objects.bulk_create(Prompt(prompt_set=ps, external_id=str(i), text=f"q{i}") for i in range(1200))
config = imported_decoding_config()
Response.objects.bulk_create(
    Response(model=model, prompt=p, decoding_config=config, text=f"An answer, **bold**, number {p.pk}.")
    for p in Prompt.objects.all()
)
other = sqlite3.connect(settings.DATABASES["default"]["NAME"], timeout=30)
real = actions.style_features
calls = 0

def style_features_while_another_process_writes(text):
    global calls
    calls += 1
    if calls % 100 == 1:  # a rater's vote, a lease release: someone else commits
        other.execute("UPDATE inference_workers_promptset SET title = title || '.'")
        other.commit()
    return real(text)

actions.style_features = style_features_while_another_process_writes
print("updated", actions.do_compute_style_features())
print("missing", Response.objects.filter(style_computed_at__isnull=True).count())
"""


def test_style_features_are_stored_while_another_connection_commits(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL")}
    env |= {"STYLEGAP_VAR_DIR": str(tmp_path / "var"), "DJANGO_SETTINGS_MODULE": "webapp.settings"}
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=1200
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "updated 1200" in run.stdout and "missing 0" in run.stdout, run.stdout
