"""The judges' pages under /studies/<slug>/ (a dashboard tab, the judging jobs) and the job pages."""

from django.urls import path

from judges import views

app_name = "judges"

urlpatterns = [
    path("<slug:slug>/dashboard/judges/", views.dashboard, name="dashboard"),
    path("<slug:slug>/judges/run/", views.start_job, name="start-job"),
    path("<slug:slug>/judges/jobs/<int:pk>/", views.job_detail, name="job-detail"),
    path("<slug:slug>/judges/jobs/<int:pk>/cancel/", views.cancel_job, name="cancel-job"),
    path("<slug:slug>/judges/jobs/<int:pk>/retry/", views.retry_job, name="retry-job"),
    path("<slug:slug>/judges/verdicts/<str:judge>.jsonl", views.download_verdicts, name="download"),
]
