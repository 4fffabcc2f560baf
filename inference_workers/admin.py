from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from inference_workers.actions import (
    JobRefused,
    do_cancel_generation_job,
    do_queue_generation_job,
    do_request_validation,
    do_retry_generation_job,
)
from inference_workers.models import (
    BenchmarkItem,
    BenchmarkRun,
    DecodingConfig,
    GenerationJob,
    LanguageModel,
    Prompt,
    PromptSet,
    Response,
)
from inference_workers.tasks import compute_style_features

# Changing any of these means different weights or a different endpoint: validate again.
VALIDATED_FIELDS = (
    "kind",
    "checkpoint",
    "server_path",
    "hub_repo_id",
    "hub_revision",
    "gguf_file",
    "base",
    "api_base_url",
    "api_model_id",
    "api_key_env",
)


class LanguageModelForm(forms.ModelForm):
    api_base_url = forms.URLField(
        required=False,
        assume_scheme="https",
        label="API base URL",
        help_text=LanguageModel.api_base_url.field.help_text,
    )

    class Meta:
        model = LanguageModel
        fields = (
            "name",
            "display_name",
            "kind",
            "role",
            *VALIDATED_FIELDS[1:],
            "prompt_price_per_mtok",
            "completion_price_per_mtok",
            "base_model_name",
            "parameter_count",
            "imitation_data_source",
            "imitation_data_tokens",
            "notes",
        )

    def clean_checkpoint(self):
        upload = self.cleaned_data.get("checkpoint")
        size = getattr(upload, "size", None)
        if size is not None and size > settings.STYLEGAP_MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The file is {size:,} bytes, over the upload limit of {settings.STYLEGAP_MAX_UPLOAD_BYTES:,} bytes."
            )
        return upload


@admin.register(LanguageModel)
class LanguageModelAdmin(admin.ModelAdmin):
    form = LanguageModelForm
    actions = ["validate_again"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ("name", "display_name", "role", "kind", "status", "base_model_name", "parameter_count")
    list_filter = ("role", "kind", "status")
    search_fields = ("name", "display_name", "base_model_name")
    readonly_fields = ("status", "status_message", "hub_commit", "created_by", "created_at")
    fieldsets = (
        (None, {"fields": ("name", "display_name", "kind", "role", "status", "status_message")}),
        (
            "Weights",
            {
                "fields": (
                    "checkpoint",
                    "server_path",
                    "hub_repo_id",
                    "hub_revision",
                    "hub_commit",
                    "gguf_file",
                    "base",
                ),
                "description": "One source: an archive (a multi-GB one resumably from the model's page once saved), "
                "a folder on the worker, or a Hugging Face Hub repo at a pinned revision.",
            },
        ),
        (
            "API",
            {
                "fields": (
                    "api_base_url",
                    "api_model_id",
                    "api_key_env",
                    "prompt_price_per_mtok",
                    "completion_price_per_mtok",
                )
            },
        ),
        (
            "Research metadata",
            {
                "fields": (
                    "base_model_name",
                    "parameter_count",
                    "imitation_data_source",
                    "imitation_data_tokens",
                    "notes",
                )
            },
        ),
        (None, {"fields": ("created_by", "created_at")}),
    )

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        if {"hub_repo_id", "hub_revision"} & set(form.changed_data):
            obj.hub_commit = ""  # a new revision is resolved to its commit again by the worker
        if "checkpoint" in form.changed_data:
            obj.checkpoint_sha256 = ""  # announced by a resumable upload only
        super().save_model(request, obj, form, change)
        if not change or any(name in form.changed_data for name in VALIDATED_FIELDS):
            do_request_validation(obj)
            self.message_user(request, f"{obj} is being validated by a worker; reload to see the verdict.")

    @admin.action(description="Validate again (in the worker)")
    def validate_again(self, request, queryset):
        for model in queryset:
            do_request_validation(model)
        self.message_user(request, f"Queued {queryset.count()} models for validation.", messages.INFO)


class PromptInline(admin.TabularInline):
    model = Prompt
    extra = 0
    fields = ("external_id", "category", "text")


@admin.register(PromptSet)
class PromptSetAdmin(admin.ModelAdmin):
    list_display = ("name", "title", "created_at")
    search_fields = ("name", "title")
    inlines = [PromptInline]


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ("external_id", "prompt_set", "category", "short_text")
    list_filter = ("prompt_set", "category")
    search_fields = ("external_id", "text")

    @admin.display(description="text")
    def short_text(self, obj):
        return obj.text[:80]


@admin.register(DecodingConfig)
class DecodingConfigAdmin(admin.ModelAdmin):
    list_display = ("__str__", "imported", "temperature", "top_p", "max_new_tokens", "seed")
    readonly_fields = ("fingerprint",)


@admin.register(GenerationJob)
class GenerationJobAdmin(admin.ModelAdmin):
    list_display = ("model", "prompt_set", "status", "done", "total", "tokens_per_second", "created_at")
    list_filter = ("status",)
    actions = ["cancel_jobs", "retry_jobs"]
    readonly_fields = (
        "status",
        "total",
        "done",
        "prompt_tokens",
        "completion_tokens",
        "tokens_in_flight",
        "tokens_per_second",
        "eta_seconds",
        "cost_usd",
        "api_requests",
        "api_retries",
        "error",
        "celery_task_id",
        "cancel_requested",
        "heartbeat_at",
        "created_by",
        "started_at",
        "finished_at",
    )

    def get_readonly_fields(self, request, obj=None):
        # What a job is (model, prompts, config) is fixed once it exists.
        if obj is not None:
            return (*self.readonly_fields, "model", "prompt_set", "decoding_config", "queue")
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        if obj.model.status != "ready":
            self.message_user(request, f"{obj.model} is not ready; the job was saved but not queued.", messages.ERROR)
            obj.status = "failed"
            obj.error = "The model was not ready when the job was created."
        obj.created_by = request.user
        obj.total = obj.prompt_set.prompts.count()
        super().save_model(request, obj, form, change)
        if obj.status == "queued":
            do_queue_generation_job(obj)

    @admin.action(description="Cancel (after the current batch)")
    def cancel_jobs(self, request, queryset):
        for job in queryset:
            do_cancel_generation_job(job)
        self.message_user(request, "Cancel requested.", messages.INFO)

    @admin.action(description="Retry (answers only what is missing)")
    def retry_jobs(self, request, queryset):
        for job in queryset:
            try:
                do_retry_generation_job(job)
            except JobRefused as exc:
                self.message_user(request, f"{job}: {exc}", messages.WARNING)


@admin.register(Response)
class ResponseAdmin(admin.ModelAdmin):
    list_display = ("model", "prompt", "length_words", "n_headers", "n_list_items", "n_bold", "n_code_blocks")
    list_filter = ("model",)
    search_fields = ("text",)
    list_select_related = ("model", "prompt", "prompt__prompt_set")
    readonly_fields = (
        "length_words",
        "length_chars",
        "n_headers",
        "n_list_items",
        "n_bold",
        "n_code_blocks",
        "style_computed_at",
    )
    actions = ["recompute_style_features"]

    @admin.action(description="Recompute style features (in the worker)")
    def recompute_style_features(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        result = compute_style_features.delay(ids)
        self.message_user(request, f"Queued {len(ids)} answers for the worker (task {result.id}).", messages.INFO)


class BenchmarkItemInline(admin.TabularInline):
    model = BenchmarkItem
    extra = 0
    fields = ("item_id", "question", "prediction", "gold", "correct")
    readonly_fields = fields
    can_delete = False
    show_change_link = False


class PublishedScoresForm(forms.Form):
    file = forms.FileField(help_text="CSV: model, benchmark, setting, score, source, source_detail, note")
    known_models_only = forms.BooleanField(required=False, help_text="Skip rows about unregistered models.")


@admin.register(BenchmarkRun)
class BenchmarkRunAdmin(admin.ModelAdmin):
    list_display = ("model", "benchmark", "published", "accuracy", "setting", "citation", "n_items", "status")
    list_filter = ("benchmark", "published", "status")
    search_fields = ("model__name", "citation", "source_detail")
    inlines = [BenchmarkItemInline]
    change_list_template = "admin/inference_workers/benchmarkrun/change_list.html"

    def get_urls(self):
        extra = [
            path(
                "import-published/",
                self.admin_site.admin_view(self.import_published),
                name="inference_workers_benchmarkrun_import_published",
            )
        ]
        return extra + super().get_urls()

    def import_published(self, request):
        """Published scores from a CSV, all or nothing; the first bad line is named."""
        from inference_workers.substance.published import PublishedScoreError, import_published_scores

        if not self.has_add_permission(request):
            raise PermissionDenied
        form = PublishedScoresForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            if upload.size > 5 * 1024 * 1024:
                form.add_error("file", "The file is larger than 5 MB.")
            else:
                try:
                    text = upload.read().decode("utf-8")
                    report = import_published_scores(text, only_known_models=form.cleaned_data["known_models_only"])
                except UnicodeDecodeError:
                    form.add_error("file", "The file is not UTF-8 text.")
                except PublishedScoreError as exc:
                    form.add_error("file", f"{exc}; nothing was imported.")
                else:
                    skipped = sum(report.skipped.values())
                    self.message_user(
                        request,
                        f"{report.created} published scores imported, {report.already_there} already there, "
                        f"{skipped} skipped.",
                    )
                    return redirect("admin:inference_workers_benchmarkrun_changelist")
        context = {**self.admin_site.each_context(request), "form": form, "title": "Import published scores"}
        return TemplateResponse(request, "admin/inference_workers/benchmarkrun/import_published.html", context)


@admin.register(BenchmarkItem)
class BenchmarkItemAdmin(admin.ModelAdmin):
    list_display = ("run", "item_id", "correct")
    list_filter = ("correct",)
