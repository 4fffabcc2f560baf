from django.urls import path

from ratings import views

app_name = "ratings"

urlpatterns = [
    path("", views.study_list, name="study-list"),
    path("<slug:slug>/", views.study_detail, name="study-detail"),
    path("<slug:slug>/style-features/", views.study_compute_style, name="study-compute-style"),
]
