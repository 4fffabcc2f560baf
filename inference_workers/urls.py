"""URL patterns owned by this area; wired into webapp/urls.py at /models/."""

from django.urls import path

from inference_workers import views
from inference_workers.sources import resumable

app_name = "inference"

urlpatterns = [
    path("", views.model_list, name="model-list"),
    path("<int:pk>/", views.model_detail, name="model-detail"),
    path("<int:pk>/status.json", views.model_status, name="model-status"),
    path("<int:pk>/upload/", views.model_upload, name="model-upload"),
    # The tus server (sources/resumable.py): creation per model, then one resource per upload.
    path("<int:pk>/uploads/", resumable.create, name="upload-create"),
    path("uploads/<uuid:upload_id>/", resumable.resource, name="upload"),
    path("jobs/", views.job_list, name="job-list"),
    path("jobs/start/", views.job_start, name="job-start"),
    path("jobs/<int:pk>/", views.job_detail, name="job-detail"),
    path("jobs/<int:pk>/progress.json", views.job_progress, name="job-progress"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="job-cancel"),
    path("jobs/<int:pk>/retry/", views.job_retry, name="job-retry"),
]
