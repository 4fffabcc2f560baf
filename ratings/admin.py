from django.contrib import admin, messages
from django.db import models
from django.urls import reverse

from ratings import tasks
from ratings.actions.quality import do_exclude_rater, do_reinstate_rater
from ratings.actions.raters import do_invite_raters
from ratings.actions.studies import do_create_attention_checks
from ratings.models import Assignment, Comparison, Rater, Study, Vote

INVITES_PER_ACTION = 10


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ("title", "slug", "status", "mode", "pairing", "votes_per_comparison", "created_at")
    list_filter = ("status", "mode", "recruitment")
    search_fields = ("title", "slug")
    prepopulated_fields = {"slug": ("title",)}
    filter_horizontal = ("language_models",)
    readonly_fields = ("token", "created_by", "created_at")
    actions = ("create_comparisons", "add_attention_checks", "create_invites")

    @admin.action(description="Create comparisons from the models' answers (in the background)")
    def create_comparisons(self, request, queryset):
        for study in queryset:
            tasks.create_comparisons.delay(study.pk)
            self.message_user(
                request,
                f"{study}: creating its comparisons (every model pair, or each model against the reference, "
                "per prompt both answered) and rendering their pages. Existing pairs are kept.",
                messages.INFO,
            )

    @admin.action(description="Add attention checks at the study's rate")
    def add_attention_checks(self, request, queryset):
        for study in queryset:
            wanted = round(study.attention_check_rate * study.comparisons.filter(is_gold=False).count())
            missing = max(wanted, study.qualification_items) - study.comparisons.filter(is_gold=True).count()
            n = do_create_attention_checks(study, missing) if missing > 0 else 0
            self.message_user(request, f"{study}: {n} attention checks added.", messages.INFO)

    @admin.action(description=f"Create {INVITES_PER_ACTION} invite links")
    def create_invites(self, request, queryset):
        for study in queryset:
            raters = do_invite_raters(study, INVITES_PER_ACTION)
            entry = reverse("rater:enter", args=[study.token])
            links = " ".join(request.build_absolute_uri(f"{entry}?invite={r.token}") for r in raters)
            self.message_user(request, f"{study}: {links}", messages.INFO)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    list_display = ("pk", "study", "prompt", "is_gold", "vote_count", "claim_count")
    list_filter = ("study", "is_gold")
    raw_id_fields = ("prompt", "response_a", "response_b")
    list_select_related = ("study", "prompt", "prompt__prompt_set")


@admin.register(Rater)
class RaterAdmin(admin.ModelAdmin):
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ("pk", "study", "platform", "external_id", "consented_at", "completed_at", "excluded")
    list_filter = ("study", "platform", "excluded")
    search_fields = ("external_id",)
    # Exclusion changes go through the actions below (ratings.actions.quality), which keep a
    # researcher's reinstatement from being undone by the automatic rules; never a plain field edit.
    readonly_fields = ("token", "excluded", "exclusion_reason", "exclusion_overridden")
    actions = ["exclude_raters", "reinstate_raters"]

    @admin.action(description="Exclude the selected raters from analysis (their votes are kept)")
    def exclude_raters(self, request, queryset):
        for rater in queryset:
            do_exclude_rater(rater, f"Excluded by {request.user.get_username()} in the admin.")
        self.message_user(request, f"{queryset.count()} rater(s) excluded.", messages.SUCCESS)

    @admin.action(description="Reinstate the selected raters (the automatic rules leave them alone)")
    def reinstate_raters(self, request, queryset):
        for rater in queryset:
            do_reinstate_rater(rater)
        self.message_user(request, f"{queryset.count()} rater(s) reinstated.", messages.SUCCESS)


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("pk", "rater", "comparison", "status", "left_is_a", "lease_expires_at")
    list_filter = ("status",)
    raw_id_fields = ("rater", "comparison")


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    list_display = ("pk", "comparison", "rater", "winner", "verdict_a", "verdict_b", "source", "seconds_on_page")
    list_filter = ("source", "winner", "verdict_a", "verdict_b")
    raw_id_fields = ("comparison", "assignment", "rater")
