"""Site-wide pages that belong to no domain: the home page and the health check."""

import logging

from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from webapp.celery import app as celery_app
from webapp.roles import is_researcher

logger = logging.getLogger(__name__)


def home(request):
    return render(request, "home.html", {"is_researcher": is_researcher(request.user)})


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        logger.exception("health: database check failed")
        return False


def _broker_ok() -> bool:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
            return True
    except Exception:
        logger.exception("health: broker check failed")
        return False


@never_cache
def healthz(request):
    """200 when the database answers and the broker accepts a connection, else 503."""
    checks = {"database": _database_ok(), "broker": _broker_ok()}
    healthy = all(checks.values())
    body = {"status": "ok" if healthy else "unhealthy", **{k: "ok" if v else "failing" for k, v in checks.items()}}
    return JsonResponse(body, status=200 if healthy else 503)
