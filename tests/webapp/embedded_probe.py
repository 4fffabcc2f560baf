"""Run in a subprocess with no DATABASE_URL: reports how the embedded SQLite default behaves, as JSON."""

import json
import os
import sqlite3
import sys
from datetime import timedelta

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

import django  # noqa: E402

django.setup()

from django.db import IntegrityError, OperationalError, connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from inference_workers.actions import imported_decoding_config  # noqa: E402
from inference_workers.models import LanguageModel, Prompt, PromptSet, Response  # noqa: E402
from ratings.models import Assignment, Comparison, Rater, Study, Vote  # noqa: E402


def refused(write) -> bool:
    try:
        with transaction.atomic():
            write()
    except IntegrityError:
        return True
    return False


report = {"vendor": connection.vendor, "broker": django.conf.settings.CELERY_BROKER_URL}
with connection.cursor() as cursor:
    cursor.execute("PRAGMA journal_mode")
    report["journal_mode"] = cursor.fetchone()[0]

ps = PromptSet.objects.create(name="probe", title="Probe")
p1 = Prompt.objects.create(prompt_set=ps, external_id="1", text="One?")
p2 = Prompt.objects.create(prompt_set=ps, external_id="2", text="Two?")
m1 = LanguageModel.objects.create(name="m1", kind="imported", role="base")
m2 = LanguageModel.objects.create(name="m2", kind="imported", role="base")
cfg = imported_decoding_config()
r1 = Response.objects.create(model=m1, prompt=p1, decoding_config=cfg, text="a")
r2 = Response.objects.create(model=m2, prompt=p1, decoding_config=cfg, text="b")
r3 = Response.objects.create(model=m2, prompt=p2, decoding_config=cfg, text="c")
study = Study.objects.create(slug="probe", title="Probe", prompt_set=ps)
comparison = Comparison.objects.create(study=study, prompt=p1, response_a=r1, response_b=r2)
rater = Rater.objects.create(study=study)
now = timezone.now()
assignment = Assignment.objects.create(
    comparison=comparison, rater=rater, left_is_a=True, leased_at=now, lease_expires_at=now + timedelta(minutes=5)
)
Vote.objects.create(comparison=comparison, assignment=assignment, rater=rater, winner="a")

report["rules"] = {
    "duplicate_response": refused(lambda: Response.objects.create(model=m1, prompt=p1, decoding_config=cfg, text="x")),
    "responses_differ": refused(
        lambda: Comparison.objects.create(study=study, prompt=p1, response_a=r1, response_b=r1)
    ),
    "same_prompt": refused(lambda: Comparison.objects.create(study=study, prompt=p1, response_a=r1, response_b=r3)),
    "missing_response": refused(
        lambda: Comparison.objects.create(study=study, prompt=p1, response_a=r1, response_b_id=r3.pk + 10**9)
    ),
    "shown_response_kept": refused(lambda: Response.objects.filter(pk=r2.pk)._raw_delete("default")),
    "one_vote_per_assignment": refused(
        lambda: Vote.objects.create(comparison=comparison, assignment=assignment, rater=rater, winner="b")
    ),
    "one_vote_per_rater_comparison": refused(
        lambda: Vote.objects.create(comparison=comparison, rater=rater, winner="b", source="imported")
    ),
}

# Another connection holds the write lock: a Django transaction must fail at BEGIN, before any read.
other = sqlite3.connect(connection.settings_dict["NAME"], timeout=0.1)
other.execute("BEGIN IMMEDIATE")
connection.close()
connection.settings_dict["OPTIONS"]["timeout"] = 0.2
try:
    with transaction.atomic():
        report["begin_took_write_lock"] = False
        Comparison.objects.count()
except OperationalError as exc:
    report["begin_took_write_lock"] = "locked" in str(exc)
finally:
    other.rollback()
    other.close()

print(json.dumps(report))
