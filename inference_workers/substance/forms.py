from django import forms

from inference_workers.models import Benchmark


class StartBenchmarkForm(forms.Form):
    benchmark = forms.ChoiceField(choices=Benchmark.choices)
    subset_size = forms.IntegerField(
        required=False, min_value=1, initial=200, help_text="Empty: the full set (NQ-open dev 3,610; TruthfulQA 817)."
    )
    subset_seed = forms.IntegerField(initial=0, min_value=-(2**63), max_value=2**63 - 1)  # the column is a bigint


class PublishedResultForm(forms.Form):
    benchmark = forms.ChoiceField(choices=Benchmark.choices)
    accuracy_percent = forms.FloatField(min_value=0, max_value=100, label="Accuracy (%)")
    n_items = forms.IntegerField(required=False, min_value=1, label="Questions scored (if the paper says)")
    citation = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)
