"""URL patterns owned by this area; wired into webapp/urls.py."""

app_name = "substance"

urlpatterns: list = []
