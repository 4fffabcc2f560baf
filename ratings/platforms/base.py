"""The interface every crowd platform implements (``ratings/platforms/__init__.py`` registers them).

A platform knows how raters arrive (the link's parameters), which outside hosts may frame the rater's
pages and receive their forms, and how a finished rater is sent back.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from ratings.models import Rater, Study


@dataclass(frozen=True)
class Arrival:
    """Who is arriving at a study link, as the link's parameters say."""

    platform: str
    external_id: str = ""
    platform_study_id: str = ""
    platform_session_id: str = ""
    platform_submit_to: str = ""
    # The link names a rater made in advance (an invite); "" for everyone else.
    rater_token: str = ""


@dataclass(frozen=True)
class Refusal:
    """Why a link is refused, as the rater reads it."""

    message: str
    status: int = 400


@dataclass(frozen=True)
class Completion:
    """How a finished rater is sent back: a redirect, or the done page with extra context."""

    redirect_url: str = ""
    context: dict = field(default_factory=dict)


class Platform:
    """A crowd platform. Subclasses set ``value`` (a ``Recruitment`` value) and override what differs."""

    value: str = ""
    # Outside origins that may frame the rater's pages (CSP frame-ancestors) and receive their forms.
    frame_hosts: tuple[str, ...] = ()
    unknown_rater = "This link is not valid."

    def preview_template(self, params: Mapping[str, str]) -> str | None:
        """A page to show instead of entering (a platform's preview of the task), or None."""
        return None

    def arrival(self, params: Mapping[str, str]) -> Arrival | Refusal:
        raise NotImplementedError

    def completion(self, rater: Rater, study: Study) -> Completion:
        """The study's code on the done page, unless the platform takes raters back another way."""
        return Completion()
