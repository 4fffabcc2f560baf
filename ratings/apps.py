from django.apps import AppConfig
from django.db.models.signals import post_migrate


class RatingsConfig(AppConfig):
    name = "ratings"
    verbose_name = "Studies and ratings"

    def ready(self):
        from ratings import modes
        from ratings.signals import create_roles

        self.mode_for = modes.mode_for
        post_migrate.connect(create_roles, sender=self)
