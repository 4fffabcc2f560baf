from django.contrib import admin, messages

from judges import actions
from judges.models import Judge, JudgePrompt, JudgeVerdict, JudgingJob


@admin.register(JudgePrompt)
class JudgePromptAdmin(admin.ModelAdmin):
    list_display = ("name", "title", "parser")


@admin.register(Judge)
class JudgeAdmin(admin.ModelAdmin):
    list_display = ("name", "display_name", "model", "prompt", "imported")
    list_filter = ("imported",)


@admin.register(JudgingJob)
class JudgingJobAdmin(admin.ModelAdmin):
    list_display = ("pk", "judge", "study", "status", "done", "total", "unparsed", "cost_usd", "created_at")
    list_filter = ("status",)
    readonly_fields = [f.name for f in JudgingJob._meta.fields if f.name not in ("judge", "study", "sample_size")]
    actions = ["cancel", "retry"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        try:
            job = actions.do_start_judging_job(obj.judge, obj.study, sample_size=obj.sample_size, user=request.user)
        except actions.JudgeRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        obj.pk = job.pk

    @admin.action(description="Cancel")
    def cancel(self, request, queryset):
        for job in queryset:
            actions.do_cancel_judging_job(job)

    @admin.action(description="Retry (only the missing verdicts)")
    def retry(self, request, queryset):
        for job in queryset:
            try:
                actions.do_retry_judging_job(job)
            except actions.JudgeRefused as exc:
                self.message_user(request, f"Job {job.pk}: {exc}", messages.WARNING)


@admin.register(JudgeVerdict)
class JudgeVerdictAdmin(admin.ModelAdmin):
    list_display = ("pk", "judge", "study", "prompt", "outcome", "repeat", "source")
    list_filter = ("outcome", "source", "judge")
    raw_id_fields = ("prompt", "response_first", "response_second", "job")
