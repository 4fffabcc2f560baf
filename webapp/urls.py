from django.contrib import admin
from django.urls import include, path

from webapp import views

admin.site.site_header = "stylegap administration"
admin.site.site_title = "stylegap"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("studies/", include("ratings.urls")),
]
