"""URL patterns owned by this area; wired into webapp/urls.py."""

from django.urls import path

from ratings import quality_views

app_name = "quality"

urlpatterns = [
    path("<slug:slug>/quality/", quality_views.study_quality_page, name="study-quality"),
    path("<slug:slug>/quality/rules/", quality_views.apply_rules, name="apply-rules"),
    path("<slug:slug>/quality/raters/<str:rater_token>/", quality_views.set_exclusion, name="set-exclusion"),
]
