"""Preview as a rater: the study's rating page (or fact-check page) exactly as raters get it, with a
preview banner, for a researcher. Nothing is leased or recorded: no rater, assignment or vote is made,
and a submitted choice is read (so its message is the rater's) and dropped.

The page is built by the rater's own code: ``item_page_context`` (the one renderer, left / right drawn
as for every rater) and the study mode's template and context, under the rater pages' headers
(``rater_page``). Its URL names the study by its token, never its slug, as rater URLs do, so no model
name reaches the page. Before Launch the items are the first prompts with whatever answers the models
have; an answer not generated yet is shown as a placeholder that names no model.
"""

import secrets
from dataclasses import dataclass

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from inference_workers.models import Response
from ratings.models import Assignment, Study
from ratings.modes import mode_for
from ratings.web.rater.views import item_page_context, rater_page
from webapp.roles import researcher_required

N_ITEMS = 10
PLACEHOLDER = "*(An answer appears here once the model has answered this prompt: Launch asks it to.)*"
BANNER = (
    "Preview as a rater: this is the page raters see. Nothing is leased or recorded, and your choices are not saved."
)


@dataclass(frozen=True)
class PreviewItem:
    prompt: str
    answer_a: str
    answer_b: str
    references: list
    comparison_id: int | None = None


def preview_items(study: Study) -> list[PreviewItem]:
    """The study's first comparisons; before it has any, its first prompts with two models' answers."""
    compared = study.comparisons.filter(is_gold=False).select_related("prompt", "response_a", "response_b")
    items = [
        PreviewItem(c.prompt.text, c.response_a.text, c.response_b.text, c.prompt.reference_answers, c.pk)
        for c in compared.order_by("pk")[:N_ITEMS]
    ]
    if items or study.prompt_set_id is None:
        return items
    models = [m.pk for m in study.language_models.order_by("pk")[:2]]
    prompts = list(study.prompt_set.prompts.order_by("pk")[:N_ITEMS])
    answers = {}
    for model_id, prompt_id, text in (
        Response.objects.filter(model_id__in=models, prompt__in=prompts)
        .order_by("pk")
        .values_list("model_id", "prompt_id", "text")
    ):
        answers.setdefault((model_id, prompt_id), text)
    a, b = (models + [None, None])[:2]
    return [
        PreviewItem(
            p.text, answers.get((a, p.pk), PLACEHOLDER), answers.get((b, p.pk), PLACEHOLDER), p.reference_answers
        )
        for p in prompts
    ]


@csrf_exempt  # it writes nothing: a forged post can only show a message
@rater_page
@researcher_required
def preview(request, study_token):
    # No request.rater_study: a researcher's page is framed by no one, not even the study's platform.
    study = get_object_or_404(Study.objects.select_related("prompt_set"), token=study_token)
    mode = mode_for(study)
    items = preview_items(study)
    here = reverse("preview:item", args=[study.token])
    try:
        n = min(max(int(request.GET.get("item", "1")), 1), max(len(items), 1))
    except ValueError:
        n = 1
    if request.method == "POST":
        if request.GET.get("pause"):
            messages.info(request, "Preview: Pause gives a rater's item back to the pool and shows how to resume.")
            return redirect(f"{here}?item={n}")
        judgement = mode.read_form(request.POST, study)
        if isinstance(judgement, str):
            messages.warning(request, judgement)
            return redirect(f"{here}?item={n}")
        messages.info(request, "Preview: not recorded. A rater would now see the next pair.")
        return redirect(f"{here}?item={n % max(len(items), 1) + 1}")
    if not items:
        return render(request, "rater/preview_empty.html", {"study": study, "preview_banner": BANNER})
    item = items[n - 1]
    # Unsaved: it carries the texts the page shows and the side drawn, as a lease would.
    shown = Assignment(comparison_id=item.comparison_id, left_is_a=secrets.randbelow(2) == 0)
    shown.texts = (item.prompt, item.answer_a, item.answer_b)
    urls = {"vote_url": f"{here}?item={n}", "pause_url": f"{here}?item={n}&pause=1", "alive_url": ""}
    context = item_page_context(study, shown, n - 1, urls, study.min_seconds_on_page)
    context["preview_banner"] = BANNER
    if item.comparison_id is not None:
        return render(request, mode.template, mode.page_context(context, item.comparison_id))
    return render(request, mode.template, mode.item_context(context, item.references))
