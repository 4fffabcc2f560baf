"""Admins upload checkpoints, researchers run studies, raters (no account) never see staff pages."""

import pytest
from django.contrib.auth import get_user_model

from tests import factories

pytestmark = pytest.mark.django_db

STAFF_PAGES = [
    "/studies/",
    "/studies/new/",
    "/admin/",
    "/admin/ratings/study/",
    "/admin/inference_workers/languagemodel/",
]


@pytest.mark.parametrize("url", STAFF_PAGES)
def test_anonymous_visitors_are_sent_to_the_login_page(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_an_account_without_the_researcher_role_is_refused(client):
    user = get_user_model().objects.create_user("someone", password="a-long-test-password")
    client.force_login(user)
    assert client.get("/studies/").status_code == 403
    assert client.get("/admin/").status_code == 302  # not staff: back to the admin login


def test_researcher_sees_studies_but_cannot_register_models(researcher_client):
    study = factories.study(factories.prompt_set(), title="Imitation study")
    listing = researcher_client.get("/studies/")
    assert listing.status_code == 200
    assert b"Imitation study" in listing.content
    assert researcher_client.get(f"/studies/{study.slug}/").status_code == 200
    assert researcher_client.get("/admin/ratings/study/add/").status_code == 200
    assert researcher_client.get("/admin/inference_workers/languagemodel/").status_code == 200  # may look
    assert researcher_client.get("/admin/inference_workers/languagemodel/add/").status_code == 403  # not upload


def test_admin_registers_models(client):
    admin = get_user_model().objects.create_superuser("ada", password="a-long-test-password")
    client.force_login(admin)
    assert client.get("/admin/inference_workers/languagemodel/add/").status_code == 200


def test_researcher_cannot_post_without_csrf_token(researcher):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(researcher)
    study = factories.study(factories.prompt_set())
    assert strict.post(f"/studies/{study.slug}/style-features/").status_code == 403


def test_home_page_names_no_model_to_the_public(client):
    factories.model(name="secret-imitation-7b", display_name="Secret Imitation 7B")
    page = client.get("/")
    assert page.status_code == 200
    assert b"stylegap" in page.content
    assert b"secret-imitation" not in page.content.lower()
