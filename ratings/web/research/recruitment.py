"""The recruitment kit of a study (what to paste into Prolific or MTurk) and, after the study, the
approve / reject files the platforms take for bulk actions (``ratings/analysis/approvals.py``)."""

import json

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from ratings.actions.raters import do_invite_raters
from ratings.analysis import approvals
from ratings.models import Recruitment, Study
from ratings.platforms import mturk, prolific
from webapp.roles import researcher_required


def entry_url(request, study: Study) -> str:
    return request.build_absolute_uri(reverse("rater:enter", args=[study.token]))


@researcher_required
def recruitment_kit(request, slug):
    study = get_object_or_404(Study, slug=slug)
    entry = entry_url(request, study)
    rows = approvals.decisions(study)
    n_comparisons = study.comparisons.filter(is_gold=False).count()
    context = {
        "study": study,
        "entry_url": entry,
        "prolific_url": prolific.study_url(entry),
        "prolific_completion_url": prolific.completion_url(study.completion_code),
        "prolific_problem": prolific.completion_problem(study.completion_redirect_url, study.completion_code),
        "external_question": mturk.external_question(entry),
        "hit_settings": json.dumps(mturk.hit_settings(study, n_comparisons), indent=2),
        "decisions": rows,
        "n_approve": sum(d.approve for d in rows),
        "n_reject": sum(not d.approve for d in rows),
        # Invite links not used yet (a rater who has consented or voted has used theirs).
        "invites": [
            f"{entry}?invite={token}"
            for token in study.raters.filter(platform=Recruitment.INVITE, consented_at__isnull=True)
            .filter(assignments__isnull=True)
            .order_by("pk")
            .values_list("token", flat=True)
        ],
        "invites_per_click": INVITES_PER_CLICK,
    }
    return render(request, "ratings/recruitment.html", context)


INVITES_PER_CLICK = 10


@require_POST
@researcher_required
def create_invites(request, slug):
    study = get_object_or_404(Study, slug=slug)
    if study.recruitment != Recruitment.INVITE:
        messages.error(request, "This study does not recruit by invitation (its Recruitment step says how).")
    else:
        do_invite_raters(study, INVITES_PER_CLICK)
        messages.info(request, f"{INVITES_PER_CLICK} invite links created.")
    return redirect("ratings:study-recruitment", slug=slug)


DOWNLOADS = {
    "prolific-approve.txt": ("text/plain", approvals.prolific_approve_ids),
    "prolific-reject.csv": ("text/csv", approvals.prolific_rejections_csv),
    "mturk-batch-results.csv": ("text/csv", approvals.mturk_batch_results_csv),
}


@researcher_required
def approval_download(request, slug, name):
    study = get_object_or_404(Study, slug=slug)
    if name not in DOWNLOADS:
        raise Http404("Unknown download.")
    kind, build = DOWNLOADS[name]
    response = HttpResponse(build(approvals.decisions(study)), content_type=f"{kind}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{study.slug}-{name}"'
    return response
