"""The three roles: admin (superuser), researcher (staff in the Researchers group), rater.

Raters have no Django account at all, so no staff page can ever be theirs.
"""

from functools import wraps

from django.contrib.auth.models import Group, Permission
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

RESEARCHERS = "Researchers"

# Researchers run studies and read results; uploading checkpoints stays with admins.
RESEARCHER_PERMISSIONS = {
    "ratings": {
        "study": "add change view",
        "comparison": "view",
        "rater": "change view",
        "assignment": "view",
        "vote": "view",
    },
    "inference_workers": {
        "languagemodel": "view",
        "promptset": "add change view",
        "prompt": "add change view",
        "decodingconfig": "add view",
        "generationjob": "add change view",
        "response": "view",
        "benchmarkrun": "add change view",
        "benchmarkitem": "view",
    },
}


def ensure_researcher_group() -> Group:
    group, _ = Group.objects.get_or_create(name=RESEARCHERS)
    wanted = []
    for app_label, models in RESEARCHER_PERMISSIONS.items():
        for model, actions in models.items():
            codenames = [f"{action}_{model}" for action in actions.split()]
            wanted += list(Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames))
    group.permissions.set(wanted)
    return group


def is_researcher(user) -> bool:
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    return user.is_superuser or user.groups.filter(name=RESEARCHERS).exists()


def researcher_required(view):
    """Staff pages: anonymous visitors go to the login page; other accounts get 403."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not is_researcher(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


class IsResearcher(BasePermission):
    """The research API's permission (DRF's default class): researchers only."""

    def has_permission(self, request, view) -> bool:
        return is_researcher(request.user)
