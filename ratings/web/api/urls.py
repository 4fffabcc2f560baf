"""The research API (DRF, token auth for researchers) and its OpenAPI schema."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from ratings.web.api import views as api

app_name = "api"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("studies/", api.StudyList.as_view(), name="study-list"),
    path("studies/<slug:slug>/leaderboard/", api.StudyLeaderboard.as_view(), name="leaderboard"),
    path("studies/<slug:slug>/analysis/", api.StudyAnalysis.as_view(), name="analysis"),
    path("studies/<slug:slug>/snapshots/", api.StudySnapshots.as_view(), name="snapshots"),
]
