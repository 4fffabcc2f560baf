"""Imported raters: the judges named in a battle file (``import_battles``), one Rater row each, so
quality, Dawid-Skene trust and agreement work on imported votes. Nobody arrives by a link."""

from ratings.models import Recruitment
from ratings.platforms.base import Platform, Refusal


class Imported(Platform):
    value = Recruitment.IMPORTED

    def arrival(self, params):
        return Refusal("This study's votes were imported from a file: it takes no raters.")
