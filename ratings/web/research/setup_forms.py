"""The set-up pages' forms, one a step. Each validates its whole step before anything is written."""

from django import forms
from django.core.exceptions import ValidationError

from inference_workers.models import LanguageModel, ModelStatus, PromptSet
from ratings.actions.studies import ATTENTION_CHECK_MODEL
from ratings.models import (
    FOLLOW_UP_KEY,
    PairingDesign,
    Recruitment,
    StudyMode,
    follow_up_problem,
)
from ratings.platforms.prolific import completion_problem
from ratings.web.research.prompt_files import MAX_BYTES, PromptFileInvalid, read_prompt_file

MAX_TEXT = 20_000


class BasicsForm(forms.Form):
    title = forms.CharField(max_length=200)
    mode = forms.ChoiceField(choices=StudyMode.choices, initial=StudyMode.PREFERENCE)


class ReadyModelChoice(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        return f"{obj} · {obj.get_role_display()} · {obj.get_kind_display()}"


def ready_models():
    """Models a study may use: validated ones, never the attention checks' stand-in."""
    return LanguageModel.objects.filter(status=ModelStatus.READY).exclude(name=ATTENTION_CHECK_MODEL).order_by("name")


class ModelsForm(forms.Form):
    models = ReadyModelChoice(
        queryset=ready_models(),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Only models that passed validation are listed, with their role and kind.",
    )
    reference_model = forms.ModelChoiceField(
        queryset=ready_models(), required=False, help_text="Optional: the model others are measured against."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Fresh querysets per form: a model validated a moment ago is offered.
        self.fields["models"].queryset = ready_models()
        self.fields["reference_model"].queryset = ready_models()

    def clean(self):
        data = super().clean()
        chosen = list(data.get("models") or [])
        if len(chosen) < 2:
            raise ValidationError(f"Choose at least two models to compare (chosen: {len(chosen)}).")
        reference = data.get("reference_model")
        if reference is not None and reference not in chosen:
            self.add_error("reference_model", "The reference must be one of the chosen models.")
        return data


class PromptsForm(forms.Form):
    prompt_set = forms.ModelChoiceField(
        queryset=PromptSet.objects.all(), required=False, help_text="An existing prompt set ..."
    )
    file = forms.FileField(
        required=False,
        help_text=f"... or upload JSONL or CSV (at most {MAX_BYTES // (1024 * 1024)} MB): "
        'JSONL one {"id": ..., "text": ..., "category": ..., "reference_answers": [...]} a line; '
        "CSV with a header naming id, text (and category, reference_answers separated by |).",
    )

    def clean(self):
        data = super().clean()
        upload, chosen = data.get("file"), data.get("prompt_set")
        if bool(upload) == bool(chosen):
            raise ValidationError("Choose a prompt set, or upload a file (one of the two).")
        if upload:
            if upload.size > MAX_BYTES:
                raise ValidationError(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
            try:
                data["records"] = read_prompt_file(upload.name, upload.read(MAX_BYTES + 1))
            except PromptFileInvalid as exc:
                raise ValidationError(exc.errors) from exc
        return data


def parse_follow_ups(text: str) -> list[dict]:
    """One question a line, ``key: question text``."""
    questions = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, question = line.partition(":")
        if not sep or not FOLLOW_UP_KEY.match(key.strip()):
            raise ValidationError(f"Follow-up line {n}: write key: question, the key 1-40 letters, digits or _.")
        questions.append({"key": key.strip(), "text": question.strip()})
    problem = follow_up_problem(questions)
    if problem:
        raise ValidationError(problem)
    return questions


def follow_ups_text(questions) -> str:
    return "\n".join(f"{q['key']}: {q['text']}" for q in questions if isinstance(q, dict))


class DesignForm(forms.Form):
    pairing = forms.ChoiceField(choices=PairingDesign.choices)
    votes_per_comparison = forms.IntegerField(
        label="Votes per comparison (k)",
        min_value=1,
        max_value=100,
        error_messages={"min_value": "k, the votes per comparison, must be at least 1."},
    )
    comparisons_per_rater = forms.IntegerField(label="Comparisons per rater (quota)", min_value=1, max_value=1000)
    attention_check_rate = forms.FloatField(
        min_value=0, max_value=1, help_text="Share of attention checks among the comparisons, 0-1."
    )
    qualification_items = forms.IntegerField(
        min_value=0, max_value=50, help_text="Attention checks every rater answers first; a wrong one ends it."
    )
    min_seconds_on_page = forms.IntegerField(min_value=0, max_value=600)
    follow_up_questions = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Optional, one a line: key: question, e.g. factual: Which answer is more accurate?",
    )
    max_new_tokens = forms.IntegerField(
        label="Generation: max new tokens", min_value=1, max_value=8192, help_text="For models Launch asks to answer."
    )
    temperature = forms.FloatField(label="Generation: temperature", min_value=0, max_value=2)
    top_p = forms.FloatField(label="Generation: top_p", min_value=0.01, max_value=1)
    seed = forms.IntegerField(label="Generation: seed", min_value=-(2**63), max_value=2**63 - 1)
    system_prompt = forms.CharField(
        label="Generation: system prompt", required=False, max_length=MAX_TEXT, widget=forms.Textarea(attrs={"rows": 2})
    )

    def clean_follow_up_questions(self):
        return parse_follow_ups(self.cleaned_data["follow_up_questions"])

    def study_fields(self) -> dict:
        keys = (
            "pairing", "votes_per_comparison", "comparisons_per_rater", "attention_check_rate",
            "qualification_items", "min_seconds_on_page", "follow_up_questions",
        )  # fmt: skip
        return {k: self.cleaned_data[k] for k in keys}

    def decoding_values(self) -> dict:
        keys = ("max_new_tokens", "temperature", "top_p", "seed", "system_prompt")
        return {k: self.cleaned_data[k] for k in keys}


RECRUITMENT_CHOICES = [(v, label) for v, label in Recruitment.choices if v != Recruitment.IMPORTED]


class RecruitmentForm(forms.Form):
    recruitment = forms.ChoiceField(choices=RECRUITMENT_CHOICES)
    completion_code = forms.RegexField(
        regex=r"^[A-Za-z0-9_-]{1,64}$",
        help_text="Shown to raters at the end (Prolific: the code of your Prolific study).",
        error_messages={"invalid": "A code is 1-64 letters, digits, _ or -."},
    )
    completion_redirect_url = forms.URLField(
        required=False,
        assume_scheme="https",
        max_length=200,
        help_text="Prolific: https://app.prolific.com/submissions/complete?cc=<code>.",
    )

    def clean(self):
        data = super().clean()
        if data.get("recruitment") == Recruitment.PROLIFIC and "completion_code" in data:
            problem = completion_problem(data.get("completion_redirect_url", ""), data["completion_code"])
            if problem:
                self.add_error("completion_redirect_url", problem)
        return data


class TextsForm(forms.Form):
    consent_text = forms.CharField(required=False, max_length=MAX_TEXT, widget=forms.Textarea(attrs={"rows": 5}))
    instructions = forms.CharField(required=False, max_length=MAX_TEXT, widget=forms.Textarea(attrs={"rows": 5}))
