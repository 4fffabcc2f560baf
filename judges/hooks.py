"""Where the judges app plugs into ratings, which never imports it: a payload extension (every snapshot,
hence the dashboard, downloads, API and ``leaderboard --json``, carries ``judges``), a dashboard tab,
the shipped templates after every migrate, and the demo's real judges once the Vicuna-80 study is loaded."""

from django.apps import apps
from django.db.models.signals import post_migrate

from judges.actions import ensure_builtin_prompts
from judges.analysis import study_judges
from judges.demo import load_vicuna80_judges
from ratings.analysis.payload import register_payload_extension
from ratings.signals import vicuna80_votes_loaded
from ratings.web.research.dashboards import register_tab


def load_demo_judges(sender, study, **kwargs):
    load_vicuna80_judges(study)


def connect() -> None:
    register_payload_extension("judges", study_judges)
    register_tab("judges", "LLM judges", "judges:dashboard")
    post_migrate.connect(ensure_builtin_prompts, sender=apps.get_app_config("judges"))
    vicuna80_votes_loaded.connect(load_demo_judges, dispatch_uid="judges.load_demo_judges")
