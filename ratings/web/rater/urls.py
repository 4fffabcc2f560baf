"""The rater's URLs: a study token to enter, then the rater's own opaque token. Never a slug or an id."""

from django.urls import path

from ratings.web.rater import views as rater_views

app_name = "rater"

urlpatterns = [
    path("<str:study_token>/", rater_views.enter, name="enter"),
    path("w/<str:rater_token>/", rater_views.rate, name="rate"),
    path("w/<str:rater_token>/consent/", rater_views.consent, name="consent"),
    path("w/<str:rater_token>/vote/<str:assignment_token>/", rater_views.vote, name="vote"),
    path("w/<str:rater_token>/alive/<str:assignment_token>/", rater_views.alive, name="alive"),
    path("w/<str:rater_token>/pause/", rater_views.pause, name="pause"),
    path("w/<str:rater_token>/paused/", rater_views.paused, name="paused"),
    path("w/<str:rater_token>/done/", rater_views.done, name="done"),
]
