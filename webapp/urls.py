from django.contrib import admin
from django.urls import include, path

from ratings.web.research.urls import dashboard_pages, preview_pages, quality_pages, study_pages
from webapp import views

admin.site.site_header = "stylegap administration"
admin.site.site_title = "stylegap"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    # Raters: opaque tokens only, no staff navigation.
    path("r/", include("ratings.web.rater.urls")),
    # Researchers.
    path("studies/", include(study_pages)),
    path("studies/", include(quality_pages)),
    path("studies/", include(dashboard_pages)),
    path("studies/", include("judges.urls")),
    # A researcher's preview of the rating page (names the study by its token, like rater URLs).
    path("preview/", include(preview_pages)),
    path("api/", include("ratings.web.api.urls")),
    # Models, generation jobs, benchmarks.
    path("models/", include("inference_workers.urls")),
    path("substance/", include("inference_workers.substance.urls")),
]
