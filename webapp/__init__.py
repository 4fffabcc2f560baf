"""Project package: settings, URLs, WSGI and the Celery app. No domain logic lives here."""

from webapp.celery import app as celery_app

__all__ = ("celery_app",)
