"""URL patterns owned by this area; wired into webapp/urls.py at /substance/."""

from django.urls import path

from inference_workers.substance import views

app_name = "substance"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("models/<int:pk>/", views.model_results, name="model-results"),
    path("models/<int:pk>/start/", views.start_run, name="start-run"),
    path("models/<int:pk>/published/", views.enter_published, name="enter-published"),
    path("runs/<int:pk>/", views.run_detail, name="run-detail"),
    path("runs/<int:pk>/progress.json", views.run_progress, name="run-progress"),
    path("runs/<int:pk>/wrong/", views.wrong_answers, name="wrong-answers"),
    path("runs/<int:pk>/resume/", views.resume_run, name="resume-run"),
]
