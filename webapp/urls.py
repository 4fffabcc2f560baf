from django.contrib import admin
from django.urls import include, path

from webapp import views

admin.site.site_header = "stylegap administration"
admin.site.site_title = "stylegap"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    # Raters: opaque tokens only, no staff navigation.
    path("r/", include("ratings.rater_urls")),
    # Researchers.
    path("studies/", include("ratings.urls")),
    path("studies/", include("ratings.quality_urls")),
    path("studies/", include("ratings.dashboard_urls")),
    path("api/", include("ratings.api_urls")),
    # Models, generation jobs, benchmarks.
    path("models/", include("inference_workers.urls")),
    path("substance/", include("inference_workers.substance.urls")),
]
