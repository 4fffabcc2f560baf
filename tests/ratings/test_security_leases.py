"""Issue 14, findings 1, 2 and 7, tested as the attacks: lease flooding through the study link, a
pause-and-resume loop past ``comparisons_per_rater``, and votes after a study is closed.

Every visit goes through the real views (Django's test client, no cookies kept between visits).
"""

import re
from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from ratings.actions.votes import do_release_expired_leases
from ratings.models import Assignment, AssignmentStatus, Comparison, Rater, Recruitment, StudyStatus, Vote
from tests.ratings.rating_setup import rating_study, sibling_study

pytestmark = pytest.mark.django_db

VOTE_FORM = re.compile(r'<form method="post" action="([^"]+/vote/[^"]+)"')


def vote_form(html: str) -> str:
    return VOTE_FORM.search(html).group(1)


def visit(study, query: str = "", ip: str = "203.0.113.7", **headers):
    """One cookie-less visit of the study link, following redirects as a browser (or a script) would."""
    return Client().get(reverse("rater:enter", args=[study.token]) + query, follow=True, REMOTE_ADDR=ip, **headers)


def open_slots(study) -> int:
    """Slots a new rater could still be given: k minus the claims of every non-gold comparison."""
    comparisons = Comparison.objects.filter(study=study, is_gold=False)
    return sum(max(0, study.votes_per_comparison - c.claim_count) for c in comparisons)


# --- Finding 1: lease flooding ----------------------------------------------------------------------


def test_scripted_visits_from_one_address_cannot_take_every_slot():
    """The review's attack: scripted cookie-less visits took every open slot; a real rater then got none."""
    study = rating_study(n_prompts=10, n_models=2, votes_per_comparison=3, comparisons_per_rater=5)
    assert open_slots(study) == 30
    statuses = [visit(study).status_code for _ in range(40)]
    assert open_slots(study) > 0, "the scripted visits took every slot"
    assert 429 in statuses
    real = visit(study, ip="198.51.100.20")
    assert real.status_code == 200
    assert VOTE_FORM.search(real.content.decode()), "a real rater should still get a pair"


def test_flooding_from_many_addresses_holds_slots_only_for_the_short_first_lease():
    """Spread over many addresses (under the per-IP cap) a flood takes the slots, but only for the first
    lease: leases of raters who never voted or interacted expire fast, and then a real rater gets a pair."""
    study = rating_study(n_prompts=10, n_models=2, votes_per_comparison=3, comparisons_per_rater=5)
    for i in range(40):
        visit(study, ip=f"192.0.2.{i + 1}")
    assert open_slots(study) == 0  # the per-study cap (120 a minute by default) lets 40 through
    # Two minutes later, beat's housekeeping has run: the flood's never-used leases are gone.
    released = do_release_expired_leases(now=timezone.now() + timedelta(seconds=120))
    assert released == 30
    real = visit(study, ip="198.51.100.20")
    assert VOTE_FORM.search(real.content.decode())


def test_first_lease_is_short_and_interaction_or_a_vote_extends_it():
    study = rating_study(n_prompts=4, lease_seconds=600, comparisons_per_rater=4)
    page = visit(study)
    rater = Rater.objects.get(study=study)
    lease = Assignment.objects.get(rater=rater, status=AssignmentStatus.LEASED)
    assert (lease.lease_expires_at - lease.leased_at).total_seconds() <= 90
    html = page.content.decode()
    # The page's script posts to the alive URL on the rater's first interaction.
    alive = re.search(r'data-alive-url="([^"]+)"', html).group(1)
    assert alive == reverse("rater:alive", args=[rater.token, lease.token])
    response = Client(enforce_csrf_checks=True).post(alive)
    assert response.status_code == 204
    lease.refresh_from_db()
    assert (lease.lease_expires_at - timezone.now()).total_seconds() > 500
    # A vote is a sign of life too: the next lease has the study's full length at once.
    page = Client().post(vote_form(html), {"choice": "left"}, follow=True)
    second = Assignment.objects.get(rater=rater, status=AssignmentStatus.LEASED)
    assert (second.lease_expires_at - second.leased_at).total_seconds() == 600
    # A full lease needs no sign of life: the page does not ask for one (no extra request per item).
    assert VOTE_FORM.search(page.content.decode()) and "data-alive-url" not in page.content.decode()


def test_alive_refuses_other_raters_and_expired_leases():
    study = rating_study(n_prompts=4, comparisons_per_rater=4)
    visit(study, ip="192.0.2.1")
    visit(study, ip="192.0.2.2")
    first, second = Rater.objects.filter(study=study).order_by("pk")
    lease = Assignment.objects.get(rater=first)
    before = lease.lease_expires_at
    # Another rater's token with this lease's token: nothing is extended.
    assert Client().post(reverse("rater:alive", args=[second.token, lease.token])).status_code == 404
    do_release_expired_leases(now=timezone.now() + timedelta(seconds=120))
    assert Client().post(reverse("rater:alive", args=[first.token, lease.token])).status_code == 404
    lease.refresh_from_db()
    assert lease.lease_expires_at == before and lease.status == AssignmentStatus.EXPIRED


@override_settings(RATER_NEW_PER_IP_PER_MINUTE=3)
def test_per_address_cap_answers_429_with_retry_after_and_a_clear_page():
    study = rating_study(n_prompts=4)
    for _ in range(3):
        assert visit(study).status_code == 200
    refused = visit(study)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert "Too many new participants" in refused.content.decode()
    assert Rater.objects.filter(study=study).count() == 3
    # Another address is not affected, and a returning rater (session cookie) never counts.
    assert visit(study, ip="198.51.100.20").status_code == 200
    browser = Client()
    browser.get(reverse("rater:enter", args=[study.token]), REMOTE_ADDR="198.51.100.21")
    assert browser.get(reverse("rater:enter", args=[study.token]), REMOTE_ADDR="198.51.100.21").status_code == 302


@override_settings(RATER_NEW_PER_STUDY_PER_MINUTE=5)
def test_per_study_cap_counts_every_address_and_invented_prolific_ids():
    study = rating_study(n_prompts=4, recruitment=Recruitment.PROLIFIC)
    codes = [
        visit(study, f"?PROLIFIC_PID=invented{i}&STUDY_ID=s&SESSION_ID=x{i}", ip=f"192.0.2.{i + 1}").status_code
        for i in range(8)
    ]
    assert codes == [200] * 5 + [429] * 3
    assert Rater.objects.filter(study=study).count() == 5
    # A Prolific participant who already exists resumes despite the cap.
    assert visit(study, "?PROLIFIC_PID=invented0&STUDY_ID=s&SESSION_ID=y", ip="192.0.2.99").status_code == 200
    # Another study has its own cap.
    other = sibling_study(study)
    assert visit(other, ip="192.0.2.200").status_code == 200


@override_settings(RATER_NEW_PER_IP_PER_MINUTE=2, RATER_TRUSTED_PROXIES=["10.0.0.5"])
def test_forwarded_for_counts_only_behind_a_trusted_proxy():
    study = rating_study(n_prompts=4)
    # A client that invents X-Forwarded-For is still counted by its own address.
    codes = [visit(study, ip="203.0.113.9", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}").status_code for i in range(3)]
    assert codes == [200, 200, 429]
    # Behind the trusted proxy, the address the proxy saw is the client's.
    codes = [visit(study, ip="10.0.0.5", HTTP_X_FORWARDED_FOR=f"6.6.6.6, 192.0.2.{i}").status_code for i in range(3)]
    assert codes == [200, 200, 200]


def test_only_a_keyed_hash_of_the_address_is_stored():
    study = rating_study(n_prompts=2)
    visit(study, ip="203.0.113.77")
    rater = Rater.objects.get(study=study)
    assert rater.ip_hash and "203.0.113.77" not in rater.ip_hash
    with override_settings(SECRET_KEY="another-key-" + "x" * 40):
        visit(study, ip="203.0.113.77")
    other = Rater.objects.filter(study=study).exclude(pk=rater.pk).get()
    assert other.ip_hash != rater.ip_hash  # keyed: not a plain hash anyone can recompute
    fields = {f.name for f in Rater._meta.get_fields()}
    assert not {"ip", "ip_address", "remote_addr"} & fields


def test_admin_shows_rater_creation_bursts(admin_client):
    study = rating_study(n_prompts=6)
    for _ in range(7):
        visit(study, ip="203.0.113.5")
    visit(study, ip="198.51.100.1")
    page = admin_client.get(reverse("admin:ratings_rater_bursts") + "?hours=2")
    html = page.content.decode()
    assert page.status_code == 200
    assert study.title in html
    bursty = Rater.objects.filter(study=study).values_list("ip_hash", flat=True).first()
    # The busiest minute of the busiest address comes first, with its count.
    first_row = re.search(r"<tr class=\"burst\">(.*?)</tr>", html, re.S).group(1)
    assert bursty[:12] in first_row and ">7<" in first_row
    assert (
        admin_client.get(reverse("admin:ratings_rater_changelist"))
        .content.decode()
        .count(reverse("admin:ratings_rater_bursts"))
    )


# --- Finding 2: comparisons_per_rater bypassed by pausing ---------------------------------------------


def test_pause_and_resume_loop_cannot_collect_more_pairs_than_the_quota():
    """The review's attack: pause (the pair returns as expired), resume (a new pair), repeat; then vote on
    every pair collected. 12 pairs on a study with a limit of 3, and the completion code."""
    study = rating_study(n_prompts=12, n_models=2, comparisons_per_rater=3, votes_per_comparison=3)
    browser = Client()
    page = browser.get(reverse("rater:enter", args=[study.token]), follow=True)
    rater = Rater.objects.get(study=study)
    forms = []
    for _ in range(12):
        found = VOTE_FORM.search(page.content.decode())
        if found is None:
            break
        forms.append(found.group(1))
        browser.post(reverse("rater:pause", args=[rater.token]))
        page = browser.get(reverse("rater:rate", args=[rater.token]), follow=True)
    for form in forms:
        browser.post(form, {"choice": "left"})
    given = Assignment.objects.filter(rater=rater).count()
    votes = Vote.objects.filter(rater=rater).count()
    assert given <= 3, f"{given} pairs given on a quota of 3"
    assert votes <= 3, f"{votes} votes on a quota of 3"
    page = browser.get(reverse("rater:done", args=[rater.token]), follow=True)
    assert votes == 3 and study.completion_code in page.content.decode()


def test_a_vote_on_an_expired_item_past_the_quota_is_refused():
    """An expired assignment given before the quota counted what was given (or by any other path): the
    vote on it is accepted only while the rater's quota allows it."""
    study = rating_study(n_prompts=4, comparisons_per_rater=1, votes_per_comparison=3)
    page = visit(study)
    rater = Rater.objects.get(study=study)
    Client().post(vote_form(page.content.decode()), {"choice": "left"})
    assert Vote.objects.filter(rater=rater).count() == 1
    now = timezone.now()
    spare = Comparison.objects.filter(study=study).exclude(assignments__rater=rater).first()
    extra = Assignment.objects.create(
        comparison=spare, rater=rater, left_is_a=True, status=AssignmentStatus.EXPIRED,
        leased_at=now - timedelta(minutes=5), lease_expires_at=now - timedelta(minutes=1),
    )  # fmt: skip
    Client().post(reverse("rater:vote", args=[rater.token, extra.token]), {"choice": "left"})
    assert Vote.objects.filter(rater=rater).count() == 1


def test_a_vote_on_an_expired_item_is_refused_when_someone_else_holds_its_slot():
    study = rating_study(n_prompts=1, votes_per_comparison=1, comparisons_per_rater=1)
    page = visit(study, ip="192.0.2.1")
    form = vote_form(page.content.decode())
    first = Rater.objects.get(study=study)
    Client().post(reverse("rater:pause", args=[first.token]))
    visit(study, ip="192.0.2.2")  # the second rater now holds the only slot
    Client().post(form, {"choice": "left"})
    assert not Vote.objects.filter(rater=first).exists()


def test_a_paused_item_comes_back_when_the_quota_is_spent():
    """Pausing costs nothing: once the quota of items is given, the rater's own unvoted items come back."""
    study = rating_study(n_prompts=6, comparisons_per_rater=2, votes_per_comparison=3)
    browser = Client()
    browser.get(reverse("rater:enter", args=[study.token]), follow=True)
    rater = Rater.objects.get(study=study)
    browser.post(reverse("rater:pause", args=[rater.token]))
    for _ in range(2):
        page = browser.get(reverse("rater:rate", args=[rater.token]), follow=True)
        browser.post(vote_form(page.content.decode()), {"choice": "left"})
    assert Vote.objects.filter(rater=rater).count() == 2
    assert Assignment.objects.filter(rater=rater).count() == 2
    page = browser.get(reverse("rater:rate", args=[rater.token]), follow=True)
    assert study.completion_code in page.content.decode()


# --- Finding 7: votes after the study is closed --------------------------------------------------------


def test_a_vote_after_the_study_closed_is_refused():
    study = rating_study(n_prompts=2, comparisons_per_rater=2)
    page = visit(study)
    form = vote_form(page.content.decode())
    study.status = StudyStatus.CLOSED
    study.save(update_fields=["status"])
    response = Client().post(form, {"choice": "left"}, follow=True)
    assert not Vote.objects.exists()
    assert "not open" in response.content.decode()


@pytest.mark.django_db(transaction=True)
@override_settings(RATER_NEW_PER_STUDY_PER_MINUTE=5)
def test_concurrent_arrivals_never_pass_the_cap():
    """Twelve cookie-less arrivals at once from twelve addresses: the study's row lock counts them one after
    another, so exactly the cap gets in and the rest get 429."""
    import threading

    from django.db import connection

    study = rating_study(n_prompts=6)
    codes: list[int] = []
    start = threading.Barrier(12)

    def arrive(i: int) -> None:
        try:
            start.wait()
            response = Client().get(reverse("rater:enter", args=[study.token]), REMOTE_ADDR=f"192.0.2.{i + 1}")
            codes.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=arrive, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [302] * 5 + [429] * 7
    assert Rater.objects.filter(study=study).count() == 5
