"""An admin cannot make the worker send its secrets anywhere (issue 14, finding 3).

A listener on loopback records every request and whether it carried an Authorization header. The admin
form refuses a key variable outside the allow-list, a plain-http URL, and a host that resolves to a
loopback address; a model row that slipped past the form (an older row) is refused again by the worker
before any request; redirects are not followed; an error answer's body never reaches the model's status.
"""

from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse

from inference_workers.actions import do_validate_model
from inference_workers.models import LanguageModel, ModelKind, ModelRole, ModelStatus
from tests import factories

from .chat_server import ServedInThread
from .conftest import TEST_API_KEY_ENV

ADD_URL = "admin:inference_workers_languagemodel_add"
INTERNAL_REPLY = "internal-service-reply: db_password=hunter2 build 4.2.1"


class Listener(ServedInThread):
    """Records (method, path, Authorization) of each request; answers ``status`` with ``body`` and ``headers``."""

    def __init__(self, status=200, body=b"{}", headers=None):
        self.seen: list[tuple[str, str, str | None]] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                listener.seen.append((self.command, self.path, self.headers.get("Authorization")))
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def authorizations(self) -> list[str]:
        return [auth for _, _, auth in self.seen if auth]


def api_row(base_url: str, key_env: str = TEST_API_KEY_ENV) -> LanguageModel:
    """A model row as an older version (or a direct database write) could have stored it: not via the form."""
    return factories.model(
        kind=ModelKind.OPENAI_API,
        role=ModelRole.PROPRIETARY,
        status=ModelStatus.PENDING,
        api_base_url=base_url,
        api_model_id="gpt-test",
        api_key_env=key_env,
        prompt_price_per_mtok=Decimal("1"),
    )


def post_form(admin_client, **fields):
    data = {"name": "gpt-x", "kind": "openai_api", "role": "proprietary", "api_model_id": "gpt-x", **fields}
    return admin_client.post(reverse(ADD_URL), data)


@pytest.mark.django_db
def test_the_admin_form_refuses_a_key_variable_outside_the_allow_list(admin_client, settings):
    page = post_form(admin_client, api_base_url="https://api.openai.com/v1", api_key_env="DATABASE_URL")
    assert page.status_code == 200
    assert "The key variable &#x27;DATABASE_URL&#x27; is not allowed" in page.content.decode()
    assert not LanguageModel.objects.exists()
    settings.STYLEGAP_API_KEY_VARIABLES = ["OPENAI_API_KEY"]
    for allowed in ("STYLEGAP_API_KEY_OPENAI", "OPENAI_API_KEY"):
        page = post_form(
            admin_client,
            name=allowed.lower().replace("_", "-"),
            api_base_url="https://127.0.0.1:1/v1",
            api_key_env=allowed,
        )
        assert "is not allowed" not in page.content.decode()


@pytest.mark.django_db
def test_the_admin_form_refuses_plain_http_and_addresses_inside_the_network(admin_client, settings):
    settings.STYLEGAP_API_LOCAL_HOSTS = []
    cases = {
        "http://api.example.org/v1": "must use https",
        "https://127.0.0.1:8443/v1": "127.0.0.1, a private, loopback or link-local address",
        "https://localhost:8443/v1": "a private, loopback or link-local address",
        "https://169.254.169.254/latest": "169.254.169.254, a private, loopback or link-local address",
        "https://10.1.2.3/v1": "10.1.2.3, a private",
        "https://[::1]:8443/v1": "::1, a private",
        "https://user:pw@api.example.org/v1": "must not hold a user name or password",
    }
    for url, words in cases.items():
        page = post_form(admin_client, api_base_url=url, api_key_env=TEST_API_KEY_ENV)
        assert page.status_code == 200, url
        assert words in page.content.decode(), url
    assert not LanguageModel.objects.exists()


@pytest.mark.django_db
def test_the_worker_refuses_a_secret_variable_before_sending_anything(monkeypatch):
    monkeypatch.setenv("DATABASE_URL_COPY", "postgres://stylegap:secret@db:5432/stylegap")
    with Listener() as listener:
        model = api_row(f"http://127.0.0.1:{listener.port}/v1", key_env="DATABASE_URL_COPY")
        assert do_validate_model(model.pk) == ModelStatus.REFUSED
    model.refresh_from_db()
    assert "not allowed" in model.status_message
    assert listener.seen == []


@pytest.mark.django_db
def test_the_worker_refuses_loopback_and_plain_http_unless_the_host_is_listed(settings):
    settings.STYLEGAP_API_LOCAL_HOSTS = []
    with Listener() as listener:
        for url in (f"http://127.0.0.1:{listener.port}/v1", f"https://localhost:{listener.port}/v1"):
            model = api_row(url)
            assert do_validate_model(model.pk) == ModelStatus.REFUSED
            model.refresh_from_db()
            assert "https" in model.status_message or "loopback" in model.status_message
    assert listener.seen == []


@pytest.mark.django_db
def test_a_redirect_is_not_followed_and_the_key_goes_nowhere_else():
    # The listed host answers with a redirect to a host that is not listed (a loopback name).
    with Listener() as inside:
        where = f"http://localhost:{inside.port}/v1/chat/completions"
        with Listener(status=302, headers={"Location": where}) as redirector:
            model = api_row(f"http://127.0.0.1:{redirector.port}/v1")
            assert do_validate_model(model.pk) == ModelStatus.REFUSED
        assert [auth is not None for _, _, auth in redirector.seen] == [True]
    assert inside.seen == []
    model.refresh_from_db()
    assert "HTTP 302 Found" in model.status_message


@pytest.mark.django_db
def test_an_error_answer_is_reduced_to_its_status_line():
    with Listener(status=403, body=INTERNAL_REPLY.encode()) as listener:
        model = api_row(f"http://127.0.0.1:{listener.port}/v1")
        assert do_validate_model(model.pk) == ModelStatus.REFUSED
    model.refresh_from_db()
    assert "HTTP 403 Forbidden" in model.status_message
    assert "hunter2" not in model.status_message and "internal-service" not in model.status_message
