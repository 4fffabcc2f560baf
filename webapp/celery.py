"""The Celery app. Queues: ``gpu`` (local generation), ``api`` (proprietary API calls), ``default``."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("stylegap")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Substance benchmarks keep their tasks beside their code.
app.autodiscover_tasks(["inference_workers.substance"])
