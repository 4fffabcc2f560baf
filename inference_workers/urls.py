"""URL patterns owned by this area; wired into webapp/urls.py at /models/."""

from django.urls import path

from inference_workers import views

app_name = "inference"

urlpatterns = [
    path("", views.model_list, name="model-list"),
    path("<int:pk>/", views.model_detail, name="model-detail"),
    path("jobs/", views.job_list, name="job-list"),
    path("jobs/start/", views.job_start, name="job-start"),
    path("jobs/<int:pk>/", views.job_detail, name="job-detail"),
    path("jobs/<int:pk>/progress.json", views.job_progress, name="job-progress"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="job-cancel"),
    path("jobs/<int:pk>/retry/", views.job_retry, name="job-retry"),
]
