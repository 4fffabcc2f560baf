"""Researchers' pages under /studies/: the study list and pages, the dashboards, the quality page.

Four URL namespaces (``ratings``, ``dashboard``, ``quality``, ``preview``), each a (patterns, app_name) pair that
webapp/urls.py includes.
"""

from django.urls import path

from ratings.web.research import dashboards, preview, quality, recruitment, setup, studies

study_pages = (
    [
        path("", studies.study_list, name="study-list"),
        path("new/", setup.study_new, name="study-new"),
        path("<slug:slug>/", studies.study_detail, name="study-detail"),
        path("<slug:slug>/style-features/", studies.study_compute_style, name="study-compute-style"),
        path("<slug:slug>/setup/<str:step>/", setup.study_setup, name="study-setup"),
        path("<slug:slug>/clone/", setup.study_clone, name="study-clone"),
        path("<slug:slug>/launch/", setup.study_launch, name="study-launch"),
        path("<slug:slug>/close/", setup.study_close, name="study-close"),
        path("<slug:slug>/reopen/", setup.study_reopen, name="study-reopen"),
        path("<slug:slug>/recruitment/", recruitment.recruitment_kit, name="study-recruitment"),
        path("<slug:slug>/recruitment/invites/", recruitment.create_invites, name="study-invites"),
        path("<slug:slug>/recruitment/<str:name>", recruitment.approval_download, name="study-approvals"),
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

# The preview names a study by its token, as rater URLs do (webapp/urls.py mounts it at /preview/).
preview_pages = ([path("<str:study_token>/", preview.preview, name="item")], "preview")
