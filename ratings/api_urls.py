"""URL patterns owned by this area; wired into webapp/urls.py."""

app_name = "api"

urlpatterns: list = []
