"""Issue 14: a fuzz test over every rater-facing URL and parameter (Hypothesis, a fixed budget).

Each example is one request to one of the rater's URLs (``ratings/web/rater/urls.py``), from a random
address, with path tokens that are either real or hostile text (NUL bytes, control characters,
other scripts, slashes, very long strings), the platforms' query parameters and the rating forms'
fields. The properties, after every request:

- no 5xx;
- a 4xx says why: a page with a message (405: the ``Allow`` header);
- no partial write: a 4xx changes nothing (raters, assignments, votes, comparisons' counts), and
  whatever the answer, every comparison's counts agree with its rows (``claim_count`` = votes + live
  leases, ``vote_count`` = votes, never past k).

Derandomized with a fixed ``max_examples``, so CI runs the same bounded set every time.
"""

from urllib.parse import quote, urlencode

import pytest
from django.db.models import Count, Q
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratings.models import Assignment, AssignmentStatus, Comparison, Rater, Recruitment, StudyMode, Vote
from tests.ratings.rating_setup import rating_study, sibling_study

pytestmark = pytest.mark.django_db

EXAMPLES = 250

HOSTILE = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12),
    st.sampled_from(["\x00", "a\x00b", "%00", "..", "/", "\\", "\r\n", "\t", "' OR 1=1 --", "<script>", "🙂"]),
    st.text(alphabet="ab\x00", min_size=200, max_size=400),
)
PARAMS = [
    "PROLIFIC_PID", "STUDY_ID", "SESSION_ID", "workerId", "assignmentId", "hitId", "turkSubmitTo", "invite",
]  # fmt: skip
FIELDS = ["choice", "reason", "consent", "verdict_left", "verdict_right", "q_factual"]
GOOD_VALUES = {
    "choice": ["left", "right", "tie", "both_bad"],
    "verdict_left": ["correct", "partly", "wrong"],
    "verdict_right": ["correct", "partly", "wrong"],
    "q_factual": ["left", "right", "tie"],
    "consent": ["yes"],
    "turkSubmitTo": ["https://www.mturk.com", "https://workersandbox.mturk.com"],
    "assignmentId": ["ASSIGNMENT_ID_NOT_AVAILABLE", "A1"],
}


def value_for(name: str):
    return st.one_of(st.sampled_from(GOOD_VALUES.get(name, ["x1"])), HOSTILE)


@st.composite
def rater_request(draw, world):
    """(method, url, data, remote address) for one of the rater's URLs."""
    study_token = draw(st.one_of(st.sampled_from(world["studies"]), HOSTILE))
    rater_token = draw(st.one_of(st.sampled_from(world["raters"]), HOSTILE))
    assignment_token = draw(st.one_of(st.sampled_from(world["assignments"]), HOSTILE))
    seg = lambda v: quote(v, safe="")  # noqa: E731
    kind = draw(st.sampled_from(["enter", "rate", "consent", "vote", "alive", "pause", "paused", "done"]))
    path = {
        "enter": f"/r/{seg(study_token)}/",
        "rate": f"/r/w/{seg(rater_token)}/",
        "consent": f"/r/w/{seg(rater_token)}/consent/",
        "vote": f"/r/w/{seg(rater_token)}/vote/{seg(assignment_token)}/",
        "alive": f"/r/w/{seg(rater_token)}/alive/{seg(assignment_token)}/",
        "pause": f"/r/w/{seg(rater_token)}/pause/",
        "paused": f"/r/w/{seg(rater_token)}/paused/",
        "done": f"/r/w/{seg(rater_token)}/done/",
    }[kind]
    posts = kind in ("consent", "vote", "alive", "pause")
    method = draw(st.sampled_from(["post", "post", "get"] if posts else ["get", "get", "post"]))
    names = draw(st.lists(st.sampled_from(PARAMS + [draw(HOSTILE)]), max_size=4, unique=True))
    query = {n: draw(value_for(n)) for n in names}
    fields = draw(st.lists(st.sampled_from(FIELDS), max_size=4, unique=True))
    data = {f: draw(value_for(f)) for f in fields}
    address = str(draw(st.ip_addresses(v=4)))
    if method == "get":
        query, data = {**query, **data}, {}
    return method, path + ("?" + urlencode(query) if query else ""), data, address


def state() -> tuple:
    """Everything a rater request may write."""
    return (
        list(Rater.objects.order_by("pk").values_list("pk", "consented_at", "completed_at", "excluded")),
        list(Assignment.objects.order_by("pk").values_list("pk", "status", "lease_expires_at")),
        Vote.objects.count(),
        list(Comparison.objects.order_by("pk").values_list("pk", "claim_count", "vote_count")),
    )


def assert_counts_agree() -> None:
    rows = Comparison.objects.annotate(
        n_votes=Count("votes", distinct=True),
        live=Count("assignments", filter=Q(assignments__status=AssignmentStatus.LEASED), distinct=True),
    ).select_related("study")
    for c in rows:
        assert c.vote_count == c.n_votes, c
        assert c.claim_count == c.n_votes + c.live, c
        assert c.is_gold or c.claim_count <= c.study.votes_per_comparison, c


def make_world() -> dict:
    study = rating_study(
        n_prompts=6, n_gold=2, attention_check_rate=0.3, consent_text="Consent?", comparisons_per_rater=3,
        follow_up_questions=[{"key": "factual", "text": "Which is more accurate?"}],
    )  # fmt: skip
    others = [
        sibling_study(study, recruitment=Recruitment.PROLIFIC, completion_redirect_url="https://app.prolific.com/x"),
        sibling_study(study, recruitment=Recruitment.MTURK),
        sibling_study(study, recruitment=Recruitment.INVITE),
        sibling_study(study, mode=StudyMode.FACT_CHECK, comparisons_per_rater=2),
        sibling_study(study, status="closed"),
    ]
    studies = [study, *others]
    invited = Rater.objects.create(study=others[2], platform=Recruitment.INVITE)
    raters = [invited.token]
    for s in (study, others[0], others[1], others[3]):
        query = {
            Recruitment.PROLIFIC: "?PROLIFIC_PID=p1&STUDY_ID=s&SESSION_ID=x",
            Recruitment.MTURK: "?workerId=W1&assignmentId=A1&hitId=h&turkSubmitTo=https://www.mturk.com",
        }.get(s.recruitment, "")
        Client().get(f"/r/{s.token}/{query}", follow=True, REMOTE_ADDR="192.0.2.250")
    for rater in Rater.objects.all():
        raters.append(rater.token)
        Client().post(f"/r/w/{rater.token}/consent/", {"consent": "yes"}, follow=True)
    return {
        "studies": [s.token for s in studies],
        "raters": raters,
        "assignments": list(Assignment.objects.values_list("token", flat=True)) or ["none"],
    }


def test_every_rater_url_and_parameter_answers_without_5xx_or_partial_writes(db):
    world = make_world()
    seen: dict[int, int] = {}

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(rater_request(world))
    def one_request(request):
        method, url, data, address = request
        before = state()
        response = getattr(Client(raise_request_exception=False), method)(url, data, REMOTE_ADDR=address)
        status = response.status_code
        seen[status] = seen.get(status, 0) + 1
        assert status < 500, (method, url, data, status)
        if 400 <= status < 500:
            if status == 405:
                assert response["Allow"], (method, url)
            else:
                body = response.content.decode(errors="replace")
                assert len(body.strip()) > 20 and "<" in body, (method, url, status, body[:200])
            assert state() == before, ("a refused request wrote something", method, url, data)
        assert_counts_agree()

    one_request()
    # The budget reached the places that matter: pages, refusals and votes all happened.
    assert seen.get(200, 0) and seen.get(302, 0) and seen.get(404, 0) and seen.get(400, 0), seen
