"""Invitations: each rater is made in advance (admin action) and gets a personal link with its token."""

from ratings.models import Recruitment
from ratings.platforms.base import Arrival, Platform, Refusal


class Invite(Platform):
    value = Recruitment.INVITE
    unknown_rater = "This invitation is not valid."

    def arrival(self, params):
        token = params.get("invite", "")
        if not token:
            return Refusal("This study is by invitation: please use the personal link you were sent.")
        return Arrival(self.value, rater_token=token[:64])
