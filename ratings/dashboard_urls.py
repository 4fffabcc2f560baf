"""Research dashboards of a study, mounted at /studies/<slug>/dashboard/."""

from django.urls import path

from ratings import dashboard_views as views

app_name = "dashboard"

urlpatterns = [
    path("<slug:slug>/dashboard/", views.overview, name="overview"),
    path("<slug:slug>/dashboard/substance/", views.substance, name="substance"),
    path("<slug:slug>/dashboard/matrix/", views.matrix, name="matrix"),
    path("<slug:slug>/dashboard/activity/", views.activity, name="activity"),
    path("<slug:slug>/dashboard/raters/", views.raters, name="raters"),
    path("<slug:slug>/dashboard/compute/", views.compute, name="compute"),
    path("<slug:slug>/dashboard/verdicts.csv", views.verdicts_csv, name="verdicts_csv"),
    path("<slug:slug>/dashboard/download/<str:name>", views.download, name="download"),
]
