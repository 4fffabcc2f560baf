"""Prolific: raters arrive with PROLIFIC_PID, STUDY_ID and SESSION_ID, and go back to the study's
completion URL with the completion code (``cc``) when done.

The recruitment kit (what a researcher pastes into Prolific's study form): the study URL with Prolific's
placeholders, the completion URL with the code, and ``completion_problem``, the check that the study's
completion redirect is Prolific's and carries this study's code.
"""

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ratings.models import Recruitment
from ratings.platforms.base import Arrival, Completion, Platform, Refusal

COMPLETE_URL = "https://app.prolific.com/submissions/complete"
# Prolific's own hosts (the older .co domain still redirects to the .com one).
PROLIFIC_HOSTS = ("app.prolific.com", "app.prolific.co")
# Prolific fills these in for each participant (its "URL parameters" option).
PLACEHOLDERS = "PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"


def study_url(entry_url: str) -> str:
    """The study link with Prolific's placeholders, as pasted into Prolific's "study URL" field."""
    return f"{entry_url}?{PLACEHOLDERS}"


def completion_url(code: str) -> str:
    """Prolific's completion URL for this code, as the study's completion redirect."""
    return completion_redirect(COMPLETE_URL, code)


def completion_problem(url: str, code: str) -> str:
    """Why this completion redirect would not complete a Prolific submission with ``code``; "" when it would."""
    if not url:
        return (
            f"A Prolific study needs its completion URL: {completion_url(code)} (Prolific shows it in its study form)."
        )
    parts = urlsplit(url)
    if (
        parts.scheme != "https"
        or parts.hostname not in PROLIFIC_HOSTS
        or parts.path.rstrip("/") != "/submissions/complete"
    ):
        return f"The completion URL is not Prolific's: use {COMPLETE_URL}?cc=<code>."
    codes = [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k == "cc"]
    if codes and codes[0] != code:
        return (
            f"The completion URL's code ({codes[0]}) is not this study's completion code ({code}): "
            "set the study's code to the one Prolific shows, or paste the URL Prolific gives for it."
        )
    return ""


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
