"""Crowd platforms: how raters reach a study and how they are sent back. One module per
``Recruitment`` value, each a ``Platform`` (``base.py``) registered in ``PLATFORMS`` below.

Add a platform: one module with a ``Platform`` subclass, its value in ``ratings.models.Recruitment``
(and the migration Django writes for the new choice), one line here.
"""

from ratings.models import Rater, Recruitment, Study
from ratings.platforms.base import Arrival, Completion, Platform, Refusal
from ratings.platforms.imported import Imported
from ratings.platforms.invite import Invite
from ratings.platforms.mturk import MTurk
from ratings.platforms.open_link import OpenLink
from ratings.platforms.prolific import Prolific

PLATFORMS: dict[str, Platform] = {
    Recruitment.OPEN_LINK: OpenLink(),
    Recruitment.INVITE: Invite(),
    Recruitment.PROLIFIC: Prolific(),
    Recruitment.MTURK: MTurk(),
    Recruitment.IMPORTED: Imported(),
}


def platform_for(study: Study) -> Platform:
    """The platform a study recruits on."""
    return PLATFORMS[study.recruitment]


def platform_of(rater: Rater) -> Platform:
    """The platform a rater came through (a study's recruitment may have changed since)."""
    return PLATFORMS[rater.platform]


__all__ = ["PLATFORMS", "Arrival", "Completion", "Platform", "Refusal", "platform_for", "platform_of"]
