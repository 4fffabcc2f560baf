from webapp.roles import ensure_researcher_group


def create_roles(sender, **kwargs):
    # Runs after every migrate, once the permissions exist.
    ensure_researcher_group()
