from django import forms

from inference_workers.chat_templates import TemplateRefused, check_template
from inference_workers.models import LanguageModel, PromptSet


class StartJobsForm(forms.Form):
    models = forms.ModelMultipleChoiceField(queryset=LanguageModel.objects.all())
    prompt_set = forms.ModelChoiceField(queryset=PromptSet.objects.all())
    temperature = forms.FloatField(min_value=0, max_value=2, initial=0.7)
    top_p = forms.FloatField(min_value=0.01, max_value=1, initial=0.9)
    max_new_tokens = forms.IntegerField(min_value=1, max_value=8192, initial=512)
    seed = forms.IntegerField(initial=0, min_value=-(2**63), max_value=2**63 - 1)  # the column is a bigint
    system_prompt = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    chat_template = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def clean_chat_template(self):
        template = self.cleaned_data["chat_template"]
        try:
            check_template(template)
        except TemplateRefused as exc:
            raise forms.ValidationError(f"The chat template is refused: {exc}") from exc
        return template

    def decoding_values(self) -> dict:
        keys = ("temperature", "top_p", "max_new_tokens", "seed", "system_prompt", "chat_template")
        return {k: self.cleaned_data[k] for k in keys}
