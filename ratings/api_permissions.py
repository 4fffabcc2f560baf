"""Who may use the research API: researchers only.

Its own module because DRF imports the default permission class while ``rest_framework.views``
is still loading, so it must not import views itself.
"""

from rest_framework.permissions import BasePermission

from ratings.roles import is_researcher


class IsResearcher(BasePermission):
    def has_permission(self, request, view) -> bool:
        return is_researcher(request.user)
