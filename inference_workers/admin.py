from django.contrib import admin, messages
from django.db import models

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


@admin.register(LanguageModel)
class LanguageModelAdmin(admin.ModelAdmin):
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ("name", "display_name", "role", "kind", "status", "base_model_name", "parameter_count")
    list_filter = ("role", "kind", "status")
    search_fields = ("name", "display_name", "base_model_name")
    readonly_fields = ("status", "status_message", "created_by", "created_at")
    fieldsets = (
        (None, {"fields": ("name", "display_name", "kind", "role", "status", "status_message")}),
        ("Weights", {"fields": ("checkpoint", "server_path", "gguf_file", "base")}),
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
        super().save_model(request, obj, form, change)


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
    readonly_fields = (
        "status",
        "total",
        "done",
        "prompt_tokens",
        "completion_tokens",
        "tokens_per_second",
        "cost_usd",
        "error",
        "celery_task_id",
        "started_at",
        "finished_at",
    )


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


@admin.register(BenchmarkRun)
class BenchmarkRunAdmin(admin.ModelAdmin):
    list_display = ("model", "benchmark", "published", "accuracy", "n_items", "status", "created_at")
    list_filter = ("benchmark", "published", "status")
    inlines = [BenchmarkItemInline]


@admin.register(BenchmarkItem)
class BenchmarkItemAdmin(admin.ModelAdmin):
    list_display = ("run", "item_id", "correct")
    list_filter = ("correct",)
