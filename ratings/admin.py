from datetime import timedelta

from django.conf import settings
from django.contrib import admin, messages
from django.db import models
from django.db.models import Count
from django.db.models.functions import TruncMinute
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from ratings import tasks
from ratings.actions.quality import do_exclude_rater, do_reinstate_rater
from ratings.actions.raters import do_invite_raters
from ratings.actions.studies import do_add_attention_checks_at_rate
from ratings.models import Assignment, Comparison, Rater, Study, Vote

INVITES_PER_ACTION = 10
BURST_ROWS = 100


def rater_bursts(hours: int, now=None) -> dict:
    """New raters per minute over the last ``hours``: per study and address hash, and per study; busiest first.

    Addresses appear only as the keyed hash stored on each rater (ratings.actions.raters.address_hash).
    """
    since = (now or timezone.now()) - timedelta(hours=hours)
    minutes = Rater.objects.filter(created_at__gte=since).exclude(ip_hash="").annotate(minute=TruncMinute("created_at"))
    per_address = (
        minutes.values("minute", "study_id", "study__title", "ip_hash")
        .annotate(n=Count("id"))
        .order_by("-n", "-minute")[:BURST_ROWS]
    )
    per_study = (
        minutes.values("minute", "study_id", "study__title")
        .annotate(n=Count("id"))
        .order_by("-n", "-minute")[:BURST_ROWS]
    )
    return {"per_address": list(per_address), "per_study": list(per_study), "since": since}


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
            n = do_add_attention_checks_at_rate(study)
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
    readonly_fields = ("token", "ip_hash", "excluded", "exclusion_reason", "exclusion_overridden")
    actions = ["exclude_raters", "reinstate_raters"]
    change_list_template = "admin/ratings/rater/change_list.html"

    def get_urls(self):
        bursts = path("bursts/", self.admin_site.admin_view(self.bursts_view), name="ratings_rater_bursts")
        return [bursts, *super().get_urls()]

    def bursts_view(self, request):
        """New raters per minute (README "Threat model"): who arrived in bursts, per study and address hash."""
        try:
            hours = min(max(int(request.GET.get("hours", "6")), 1), 72)
        except ValueError:
            hours = 6
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Rater bursts: new raters per minute, last {hours} hours",
            "hours": hours,
            "caps": {
                "address": settings.RATER_NEW_PER_IP_PER_MINUTE,
                "study": settings.RATER_NEW_PER_STUDY_PER_MINUTE,
            },
            **rater_bursts(hours),
        }
        return TemplateResponse(request, "admin/ratings/rater/bursts.html", context)

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
