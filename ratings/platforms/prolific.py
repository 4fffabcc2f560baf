"""Prolific: raters arrive with PROLIFIC_PID, STUDY_ID and SESSION_ID, and go back to the study's
completion URL with the completion code (``cc``) when done."""

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ratings.models import Recruitment
from ratings.platforms.base import Arrival, Completion, Platform, Refusal


def completion_redirect(url: str, code: str) -> str:
    """The study's completion URL with ``cc=<code>`` added unless it already carries one (Prolific's form)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not any(k == "cc" for k, _ in query):
        query.append(("cc", code))
    return urlunsplit(parts._replace(query=urlencode(query)))


class Prolific(Platform):
    value = Recruitment.PROLIFIC

    def arrival(self, params):
        pid = params.get("PROLIFIC_PID", "").strip()
        if not pid:
            return Refusal("This study is run on Prolific: please open it from your Prolific dashboard.")
        return Arrival(self.value, pid[:200], params.get("STUDY_ID", "")[:200], params.get("SESSION_ID", "")[:200])

    def completion(self, rater, study):
        if study.completion_redirect_url:
            return Completion(redirect_url=completion_redirect(study.completion_redirect_url, study.completion_code))
        return Completion()
