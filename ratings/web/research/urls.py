"""Researchers' pages under /studies/: the study list and pages, the dashboards, the quality page.

Three URL namespaces (``ratings``, ``dashboard``, ``quality``), each a (patterns, app_name) pair that
webapp/urls.py includes.
"""

from django.urls import path

from ratings.web.research import dashboards, quality, studies

study_pages = (
    [
        path("", studies.study_list, name="study-list"),
        path("<slug:slug>/", studies.study_detail, name="study-detail"),
        path("<slug:slug>/style-features/", studies.study_compute_style, name="study-compute-style"),
    ],
    "ratings",
)

dashboard_pages = (
    [
        path("<slug:slug>/dashboard/", dashboards.overview, name="overview"),
        path("<slug:slug>/dashboard/substance/", dashboards.substance, name="substance"),
        path("<slug:slug>/dashboard/matrix/", dashboards.matrix, name="matrix"),
        path("<slug:slug>/dashboard/activity/", dashboards.activity, name="activity"),
        path("<slug:slug>/dashboard/raters/", dashboards.raters, name="raters"),
        path("<slug:slug>/dashboard/compute/", dashboards.compute, name="compute"),
        path("<slug:slug>/dashboard/verdicts.csv", dashboards.verdicts_csv, name="verdicts_csv"),
        path("<slug:slug>/dashboard/download/<str:name>", dashboards.download, name="download"),
    ],
    "dashboard",
)

quality_pages = (
    [
        path("<slug:slug>/quality/", quality.study_quality_page, name="study-quality"),
        path("<slug:slug>/quality/rules/", quality.apply_rules, name="apply-rules"),
        path("<slug:slug>/quality/raters/<str:rater_token>/", quality.set_exclusion, name="set-exclusion"),
    ],
    "quality",
)
