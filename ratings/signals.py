from django.dispatch import Signal

from webapp.roles import ensure_researcher_group

# Sent by setup_demo once the Vicuna-80 human-votes study is loaded (argument: study); other apps add
# their own demo data on it (the judges app loads the real LLM judges' verdicts) without ratings importing them.
vicuna80_votes_loaded = Signal()


def create_roles(sender, **kwargs):
    # Runs after every migrate, once the permissions exist.
    ensure_researcher_group()
