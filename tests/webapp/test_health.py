import pytest

from webapp.celery import app as celery_app

pytestmark = pytest.mark.django_db


def test_health_reports_database_and_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_health_fails_when_the_broker_is_unreachable(client, monkeypatch):
    # Nothing listens on port 1.
    unreachable = celery_app.connection_for_write(url="redis://127.0.0.1:1/0")
    monkeypatch.setattr(celery_app, "connection_for_write", lambda: unreachable)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"] == "failing"
    assert response.json()["database"] == "ok"
