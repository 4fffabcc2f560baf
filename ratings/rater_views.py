"""The rater's pages. Thin: they read the link, call ratings.assignment and ratings.actions, render.

Everything here names rows by opaque tokens only; no page, URL, form field or header says which
model wrote an answer. Plain forms and POST-redirect-GET, so the path works without JavaScript.
"""

from functools import wraps
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ratings import actions
from ratings.actions import CHOICES, Arrival, VoteOutcome
from ratings.assignment import failed_qualification, lease_next_comparison, open_comparisons, page_texts, rater_progress
from ratings.factcheck import clean_refs, is_fact_check, verdict_from_form
from ratings.hotpath import rater_by_token
from ratings.models import Comparison, Rater, RaterPlatform, Recruitment, Study, StudyStatus, Verdict
from ratings.rendering import render_model_texts

MTURK_PREVIEW = "ASSIGNMENT_ID_NOT_AVAILABLE"
MTURK_SUBMIT_HOSTS = ("https://www.mturk.com", "https://workersandbox.mturk.com")
# Model text is sanitised already; the policy is a second wall: no script but ours, no remote anything.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self' {form}; frame-ancestors {frame}"
)


def rater_page(view):
    """No caching, a strict content security policy, and MTurk's frame allowed where the study is on MTurk."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        response = never_cache(view)(request, *args, **kwargs)
        study = getattr(request, "rater_study", None)
        mturk = study is not None and study.recruitment == Recruitment.MTURK
        frame = " ".join(MTURK_SUBMIT_HOSTS) if mturk else "'none'"
        form = " ".join(MTURK_SUBMIT_HOSTS) if mturk else ""
        if study is not None and study.completion_redirect_url:
            # Chromium applies form-action to the redirects after a vote, up to the completion URL.
            parts = urlsplit(study.completion_redirect_url)
            form = f"{form} {parts.scheme}://{parts.netloc}"
        response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.format(form=form.strip(), frame=frame)
        if mturk:
            # MTurk shows an ExternalQuestion in an iframe on its own site.
            response.xframe_options_exempt = True
        return response

    return wrapper


def session_key(study: Study) -> str:
    return f"rater:{study.token}"


def arrival_from(params, study: Study) -> tuple[Arrival | None, str]:
    """The arrival the link's parameters describe for this study, or None and why it is refused."""
    if study.recruitment == Recruitment.PROLIFIC:
        pid = params.get("PROLIFIC_PID", "").strip()
        if not pid:
            return None, "This study is run on Prolific: please open it from your Prolific dashboard."
        return Arrival(
            RaterPlatform.PROLIFIC,
            pid[:200],
            params.get("STUDY_ID", "")[:200],
            params.get("SESSION_ID", "")[:200],
        ), ""
    if study.recruitment == Recruitment.MTURK:
        worker = params.get("workerId", "").strip()
        submit_to = params.get("turkSubmitTo", "").strip().rstrip("/")
        if not worker:
            return None, "This study is run on Mechanical Turk: please open it from the HIT."
        if submit_to not in MTURK_SUBMIT_HOSTS:
            return None, "This link is missing Mechanical Turk's submit address: please open it from the HIT."
        return Arrival(
            RaterPlatform.MTURK,
            worker[:200],
            params.get("hitId", "")[:200],
            params.get("assignmentId", "")[:200],
            submit_to,
        ), ""
    if study.recruitment == Recruitment.INVITE:
        return None, "This study is by invitation: please use the personal link you were sent."
    return Arrival(RaterPlatform.ANONYMOUS), ""


@rater_page
def enter(request, study_token):
    """The study link: Prolific or MTurk parameters, an invite token, or nothing (open link)."""
    study = get_object_or_404(Study, token=study_token)
    request.rater_study = study
    if study.status != StudyStatus.OPEN or study.imported:
        return render(request, "rater/closed.html", {"study": study})
    if study.recruitment == Recruitment.MTURK and request.GET.get("assignmentId") == MTURK_PREVIEW:
        return render(request, "rater/mturk_preview.html", {"study": study})
    if study.recruitment == Recruitment.INVITE and request.GET.get("invite"):
        rater = Rater.objects.filter(study=study, platform=RaterPlatform.INVITE, token=request.GET["invite"]).first()
        if rater is None:
            return render(request, "rater/refused.html", {"message": "This invitation is not valid."}, status=404)
    else:
        arrival, problem = arrival_from(request.GET, study)
        if arrival is None:
            return render(request, "rater/refused.html", {"message": problem}, status=400)
        token = request.session.get(session_key(study))
        remembered = Rater.objects.filter(study=study, token=token).first() if token else None
        rater = actions.do_enter_study(study, arrival, remembered)
    request.session[session_key(study)] = rater.token
    return redirect("rater:rate", rater_token=rater.token)


def _rater(request, rater_token) -> Rater:
    rater = rater_by_token(rater_token)
    if rater is None:
        raise Http404("No such rater.")
    request.rater_study = rater.study
    return rater


def _needs_consent(rater: Rater) -> bool:
    study = rater.study
    return rater.consented_at is None and bool(study.consent_text or study.instructions)


# Rater forms need no CSRF cookie: the rater's token in the URL, not a cookie, is the credential, and
# MTurk's iframe is a third-party context where a SameSite cookie would not be sent.
@csrf_exempt
@rater_page
def consent(request, rater_token):
    rater = _rater(request, rater_token)
    if request.method == "POST":
        if request.POST.get("consent") == "yes":
            actions.do_consent(rater)
            return redirect("rater:rate", rater_token=rater.token)
        messages.error(request, "Please tick the box to take part, or close this page if you do not wish to.")
        return redirect("rater:consent", rater_token=rater.token)
    return render(request, "rater/consent.html", {"rater": rater, "study": rater.study})


@rater_page
def rate(request, rater_token):
    """The rating page: the rater's current lease, or the next comparison, or the way out."""
    rater = _rater(request, rater_token)
    study = rater.study
    if study.status != StudyStatus.OPEN:
        return render(request, "rater/closed.html", {"study": study})
    if _needs_consent(rater):
        return redirect("rater:consent", rater_token=rater.token)
    if rater.completed_at:
        return redirect("rater:done", rater_token=rater.token)
    assignment = lease_next_comparison(rater)
    n_wanted = study.comparisons_per_rater
    if assignment is None:
        n_voted, _ = rater_progress(rater)
        if n_voted >= n_wanted:
            return redirect("rater:done", rater_token=rater.token)
        if failed_qualification(study, rater, n_voted):
            actions.do_exclude_rater(rater, "Did not pass the qualification round.")
            return render(request, "rater/not_qualified.html", {"rater": rater})
        return render(request, "rater/no_more_work.html", {"rater": rater, "n_voted": n_voted})
    n_voted = assignment.n_voted
    prompt, a, b = page_texts(assignment)
    left, right = (a, b) if assignment.left_is_a else (b, a)
    prompt_html, left_html, right_html = render_model_texts([prompt, left, right])
    waited = (timezone.now() - assignment.leased_at).total_seconds()
    context = {
        "rater": rater,
        "study": study,
        "assignment": assignment,
        "prompt_html": prompt_html,
        "left_html": left_html,
        "right_html": right_html,
        "position": n_voted + 1,
        "n_wanted": n_wanted,
        "percent": round(100 * n_voted / n_wanted) if n_wanted else 100,
        "wait_ms": max(0, int((study.min_seconds_on_page - waited) * 1000)),
        "questions": [q for q in study.follow_up_questions if isinstance(q, dict) and q.get("key") and q.get("text")],
    }
    if is_fact_check(study):
        return render(request, "rater/fact_check.html", fact_check_context(context, assignment.comparison_id))
    return render(request, "rater/rate.html", context)


VOTE_MESSAGES = {
    VoteOutcome.TOO_SOON: (messages.WARNING, "Please take a little more time to read both answers, then choose."),
    VoteOutcome.COMPARISON_FULL: (
        messages.INFO,
        "Thank you. While this pair was open, it received all the answers it needed, so yours was not "
        "recorded this time. Here is the next pair.",
    ),
    VoteOutcome.UNKNOWN_ASSIGNMENT: (messages.INFO, "That pair is no longer open. Here is the next one."),
}


@csrf_exempt
@require_POST
@rater_page
def vote(request, rater_token, assignment_token):
    rater = _rater(request, rater_token)
    if is_fact_check(rater.study):
        return fact_check_vote(request, rater, assignment_token)
    choice = request.POST.get("choice", "")
    if choice not in CHOICES:
        messages.warning(request, "Please choose one of the four buttons.")
        return redirect("rater:rate", rater_token=rater.token)
    answers = {}
    for question in rater.study.follow_up_questions:
        value = request.POST.get(f"q_{question.get('key')}", "") if isinstance(question, dict) else ""
        if value in ("left", "right", "tie"):
            answers[question["key"]] = value
    outcome = actions.do_record_vote(rater, assignment_token, choice, answers, request.POST.get("reason", ""))
    return _after_vote(request, rater, outcome)


def _after_vote(request, rater: Rater, outcome: VoteOutcome):
    if outcome in VOTE_MESSAGES:
        level, text = VOTE_MESSAGES[outcome]
        messages.add_message(request, level, text)
    return redirect("rater:rate", rater_token=rater.token)


# --- Fact-check studies: the same path, a verdict on each answer instead of a choice (ratings/factcheck.py) ---

# (form value, label, shortcut key) per side; the keys are shown on the page.
VERDICT_KEYS = {"left": ("1", "2", "3"), "right": ("4", "5", "6")}


def fact_check_context(context: dict, comparison_id: int) -> dict:
    choices = [(v.value, v.label) for v in (Verdict.CORRECT, Verdict.PARTLY, Verdict.WRONG)]
    sides = [
        {"key": key, "label": label, "html": context[f"{key}_html"]}
        | {"choices": [(value, text, k) for (value, text), k in zip(choices, VERDICT_KEYS[key], strict=True)]}
        for key, label in (("left", "A"), ("right", "B"))
    ]
    refs = Comparison.objects.filter(pk=comparison_id).values_list("prompt__reference_answers", flat=True).first()
    return {**context, "sides": sides, "references": clean_refs(refs)}


def fact_check_vote(request, rater: Rater, assignment_token: str):
    verdicts = (
        verdict_from_form(request.POST.get("verdict_left", "")),
        verdict_from_form(request.POST.get("verdict_right", "")),
    )
    if None in verdicts:
        messages.warning(request, "Please judge both answers (correct, partly correct or wrong), then submit.")
        return redirect("rater:rate", rater_token=rater.token)
    outcome = actions.do_record_vote(
        rater, assignment_token, "", reason=request.POST.get("reason", ""), verdicts=verdicts
    )
    return _after_vote(request, rater, outcome)


@csrf_exempt
@require_POST
@rater_page
def pause(request, rater_token):
    rater = _rater(request, rater_token)
    actions.do_pause(rater)
    return redirect("rater:paused", rater_token=rater.token)


@rater_page
def paused(request, rater_token):
    rater = _rater(request, rater_token)
    n_voted, n_wanted = rater_progress(rater)
    return render(request, "rater/paused.html", {"rater": rater, "n_voted": n_voted, "n_wanted": n_wanted})


def completion_redirect(url: str, code: str) -> str:
    """The study's completion URL with ``cc=<code>`` added unless it already carries one (Prolific's form)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not any(k == "cc" for k, _ in query):
        query.append(("cc", code))
    return urlunsplit(parts._replace(query=urlencode(query)))


@rater_page
def done(request, rater_token):
    """The completion page: the code, Prolific's redirect, or MTurk's externalSubmit form."""
    rater = _rater(request, rater_token)
    study = rater.study
    n_voted, n_wanted = rater_progress(rater)
    finished = (
        rater.completed_at
        or n_voted >= n_wanted
        or failed_qualification(study, rater, n_voted)
        or (n_voted > 0 and not open_comparisons(study, rater).exists())
    )
    if not finished:
        return redirect("rater:rate", rater_token=rater.token)
    actions.do_pause(rater)
    actions.do_complete(rater)
    if rater.platform == RaterPlatform.PROLIFIC and study.completion_redirect_url:
        return redirect(completion_redirect(study.completion_redirect_url, study.completion_code))
    context = {"rater": rater, "study": study, "n_voted": n_voted}
    if rater.platform == RaterPlatform.MTURK and rater.platform_submit_to in MTURK_SUBMIT_HOSTS:
        context["mturk_action"] = f"{rater.platform_submit_to}/mturk/externalSubmit"
    return render(request, "rater/done.html", context)
