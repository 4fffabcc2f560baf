"""An open link: anyone with the study link may rate; a session cookie remembers a returning rater."""

from ratings.models import Recruitment
from ratings.platforms.base import Arrival, Platform


class OpenLink(Platform):
    value = Recruitment.OPEN_LINK

    def arrival(self, params):
        return Arrival(self.value)
