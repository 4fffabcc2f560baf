"""The rater's pages. Thin: each reads the request, makes one call to ``ratings.actions``, renders.

Everything here names rows by opaque tokens only; no page, URL, form field or header says which
model wrote an answer. Plain forms and POST-redirect-GET, so the path works without JavaScript.
What differs by study mode (the page, the form) is the mode's (``ratings/modes/``); what differs by
crowd platform (arrival, framing, the way back) is the platform's (``ratings/platforms/``).

A GET shows: it may lease the item it shows, and the done page records completion, but votes,
consent, pauses and exclusions change only on POST.

Rater input is untrusted (README "Threat model"): a NUL byte anywhere in the URL or a parameter is a
400 with a message before anything is read; new raters per minute are capped per client address
and per study (a 429 page with Retry-After); the rating page's script tells the server, once, that
the rater is there (``alive``), which extends the short first lease.
"""

from functools import wraps
from ipaddress import ip_address
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ratings.actions import raters, votes
from ratings.actions.votes import VoteOutcome
from ratings.models import Rater, Study, StudyStatus
from ratings.modes import mode_for
from ratings.platforms import Refusal, platform_for, platform_of

# Model text is sanitised already; the policy is a second wall: no script but ours, no remote anything.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self' {form}; frame-ancestors {frame}"
)


NUL_MESSAGE = (
    "This link or form contains a character that is not allowed (a NUL byte). "
    "Please open the study again from the link you were given."
)


def has_nul(request, kwargs) -> bool:
    """Whether a NUL byte is in the URL's parts, the query string or a posted field (names or values)."""
    values = [*kwargs.values()]
    for params in (request.GET, request.POST) if request.method == "POST" else (request.GET,):
        for key, items in params.lists():
            values += [key, *items]
    return any("\0" in v for v in values if isinstance(v, str))


def rater_page(view):
    """No caching, a strict content security policy, the study's platform's frame allowed; NUL bytes refused."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if has_nul(request, kwargs):
            response = never_cache(render)(request, "rater/refused.html", {"message": NUL_MESSAGE}, status=400)
        else:
            response = never_cache(view)(request, *args, **kwargs)
        study = getattr(request, "rater_study", None)
        hosts = platform_for(study).frame_hosts if study is not None else ()
        frame = " ".join(hosts) if hosts else "'none'"
        form = " ".join(hosts)
        if study is not None and study.completion_redirect_url:
            # Chromium applies form-action to the redirects after a vote, up to the completion URL.
            parts = urlsplit(study.completion_redirect_url)
            form = f"{form} {parts.scheme}://{parts.netloc}"
        response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.format(form=form.strip(), frame=frame)
        if hosts:
            # The platform shows the study in an iframe on its own site (MTurk's ExternalQuestion).
            response.xframe_options_exempt = True
        return response

    return wrapper


def session_key(study: Study) -> str:
    return f"rater:{study.token}"


def client_address(request) -> str:
    """REMOTE_ADDR, or the nearest X-Forwarded-For entry that a trusted proxy (``RATER_TRUSTED_PROXIES``) added."""
    address = request.META.get("REMOTE_ADDR", "")
    trusted = set(settings.RATER_TRUSTED_PROXIES)
    if address in trusted:
        for hop in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
            hop = hop.strip()
            if hop and hop not in trusted:
                try:
                    return str(ip_address(hop))
                except ValueError:
                    break  # not an address: fall back on the proxy's own
    return address


def too_many_new_raters(request, capped: raters.NewRatersCapped):
    response = render(request, "rater/too_many.html", {"capped": capped}, status=429)
    response["Retry-After"] = str(capped.retry_after)
    return response


@rater_page
def enter(request, study_token):
    """The study link, with whatever the study's platform puts on it (nothing, for an open link)."""
    study = get_object_or_404(Study, token=study_token)
    request.rater_study = study
    if study.status != StudyStatus.OPEN or study.imported:
        return render(request, "rater/closed.html", {"study": study})
    platform = platform_for(study)
    preview = platform.preview_template(request.GET)
    if preview:
        return render(request, preview, {"study": study})
    arrival = platform.arrival(request.GET)
    if isinstance(arrival, Refusal):
        return render(request, "rater/refused.html", {"message": arrival.message}, status=arrival.status)
    token = request.session.get(session_key(study))
    remembered = Rater.objects.filter(study=study, token=token).first() if token else None
    try:
        rater = raters.do_enter_study(study, arrival, remembered, raters.address_hash(client_address(request)))
    except raters.NewRatersCapped as capped:
        return too_many_new_raters(request, capped)
    if rater is None:
        return render(request, "rater/refused.html", {"message": platform.unknown_rater}, status=404)
    request.session[session_key(study)] = rater.token
    return redirect("rater:rate", rater_token=rater.token)


def _rater(request, rater_token) -> Rater:
    rater = raters.rater_by_token(rater_token)
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
            raters.do_consent(rater)
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
    assignment = raters.do_lease_next(rater)
    n_wanted = study.comparisons_per_rater
    if assignment is None:
        n_voted, _ = raters.rater_progress(rater)
        if n_voted >= n_wanted or (n_voted > 0 and raters.quota_given(study, rater)):
            return redirect("rater:done", rater_token=rater.token)
        if raters.failed_qualification(study, rater, n_voted):
            # The exclusion itself was recorded with the vote that failed the round (a POST).
            return render(request, "rater/not_qualified.html", {"rater": rater})
        return render(request, "rater/no_more_work.html", {"rater": rater, "n_voted": n_voted})
    waited = (timezone.now() - assignment.leased_at).total_seconds()
    # Only a short first lease needs the page's sign of life (its script posts to the alive URL once).
    short_lease = (assignment.lease_expires_at - assignment.leased_at).total_seconds() < study.lease_seconds
    urls = {
        "vote_url": reverse("rater:vote", args=[rater.token, assignment.token]),
        "pause_url": reverse("rater:pause", args=[rater.token]),
        "alive_url": reverse("rater:alive", args=[rater.token, assignment.token]) if short_lease else "",
    }
    context = item_page_context(study, assignment, assignment.n_voted, urls, study.min_seconds_on_page - waited)
    mode = mode_for(study)
    return render(request, mode.template, mode.page_context(context, assignment.comparison_id))


def item_page_context(study: Study, assignment, n_voted: int, urls: dict, wait_seconds: float) -> dict:
    """The rating page's context for an item (the researcher's preview builds its page with this too):
    its texts from the one renderer, in the order this assignment shows them, and where its forms post."""
    prompt_html, left_html, right_html = raters.item_html(assignment)
    n_wanted = study.comparisons_per_rater
    return {
        "study": study,
        "prompt_html": prompt_html,
        "left_html": left_html,
        "right_html": right_html,
        "position": n_voted + 1,
        "n_wanted": n_wanted,
        "percent": round(100 * n_voted / n_wanted) if n_wanted else 100,
        "wait_ms": max(0, int(wait_seconds * 1000)),
        "questions": study.questions(),
        **urls,
    }


VOTE_MESSAGES = {
    VoteOutcome.TOO_SOON: (messages.WARNING, "Please take a little more time to read both answers, then choose."),
    VoteOutcome.COMPARISON_FULL: (
        messages.INFO,
        "Thank you. While this pair was open, it received all the answers it needed, so yours was not "
        "recorded this time. Here is the next pair.",
    ),
    VoteOutcome.UNKNOWN_ASSIGNMENT: (messages.INFO, "That pair is no longer open. Here is the next one."),
    VoteOutcome.OVER_QUOTA: (messages.INFO, "You have already given all the answers this study asks of you."),
}


@csrf_exempt
@require_POST
@rater_page
def vote(request, rater_token, assignment_token):
    rater = _rater(request, rater_token)
    judgement = mode_for(rater.study).read_form(request.POST, rater.study)
    if isinstance(judgement, str):
        messages.warning(request, judgement)
        return redirect("rater:rate", rater_token=rater.token)
    outcome = votes.do_submit(rater, assignment_token, judgement)
    if outcome in VOTE_MESSAGES:
        level, text = VOTE_MESSAGES[outcome]
        messages.add_message(request, level, text)
    return redirect("rater:rate", rater_token=rater.token)


@csrf_exempt
@require_POST
@rater_page
def alive(request, rater_token, assignment_token):
    """The rating page's sign of life (its script posts here once, on the rater's first interaction):
    the short first lease of this item runs the study's full lease. 204, or 404 for no live lease."""
    rater = _rater(request, rater_token)
    if not raters.do_extend_lease(rater, assignment_token):
        raise Http404("No live lease.")
    return HttpResponse(status=204)


@csrf_exempt
@require_POST
@rater_page
def pause(request, rater_token):
    rater = _rater(request, rater_token)
    raters.do_pause(rater)
    return redirect("rater:paused", rater_token=rater.token)


@rater_page
def paused(request, rater_token):
    rater = _rater(request, rater_token)
    n_voted, n_wanted = raters.rater_progress(rater)
    return render(request, "rater/paused.html", {"rater": rater, "n_voted": n_voted, "n_wanted": n_wanted})


@rater_page
def done(request, rater_token):
    """The completion page: the code, or the way back the rater's platform takes (ratings/platforms/)."""
    rater = _rater(request, rater_token)
    study = rater.study
    n_voted, _ = raters.rater_progress(rater)
    if not raters.is_finished(study, rater, n_voted):
        return redirect("rater:rate", rater_token=rater.token)
    raters.do_pause(rater)
    raters.do_complete(rater)
    completion = platform_of(rater).completion(rater, study)
    if completion.redirect_url:
        return redirect(completion.redirect_url)
    return render(
        request, "rater/done.html", {"rater": rater, "study": study, "n_voted": n_voted, **completion.context}
    )
