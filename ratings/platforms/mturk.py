"""Amazon Mechanical Turk: an ExternalQuestion shown in MTurk's iframe. Workers arrive with workerId,
assignmentId, hitId and turkSubmitTo (checked against MTurk's hosts); a HIT preview shows a page
without entering; a finished worker posts the externalSubmit form back to MTurk.

The recruitment kit: the ExternalQuestion XML (MTurk's 2006-07-14 schema) and the CreateHIT settings
that go with it.
"""

import math
from xml.sax.saxutils import escape

from ratings.models import Recruitment
from ratings.platforms.base import Arrival, Completion, Platform, Refusal

PREVIEW = "ASSIGNMENT_ID_NOT_AVAILABLE"
# turkSubmitTo: where the finished HIT's form posts (production, sandbox).
SUBMIT_HOSTS = ("https://www.mturk.com", "https://workersandbox.mturk.com")
# The worker sites whose HIT page frames an ExternalQuestion (production, sandbox).
WORKER_SITES = ("https://worker.mturk.com", "https://workersandbox.mturk.com")


EXTERNAL_QUESTION_SCHEMA = (
    "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd"
)
FRAME_HEIGHT = 900


def external_question(url: str, frame_height: int = FRAME_HEIGHT) -> str:
    """The ExternalQuestion document for CreateHIT's ``Question`` parameter (the URL XML-escaped)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<ExternalQuestion xmlns="{EXTERNAL_QUESTION_SCHEMA}">\n'
        f"  <ExternalURL>{escape(url)}</ExternalURL>\n"
        f"  <FrameHeight>{frame_height}</FrameHeight>\n"
        "</ExternalQuestion>\n"
    )


def hit_settings(study, n_comparisons: int) -> dict:
    """CreateHIT parameters for the study (the reward is the researcher's to set).

    MaxAssignments = ceil(comparisons x votes per comparison / items per rater): enough workers for
    every comparison's k votes when each gives a full quota.
    """
    per_rater = max(1, study.comparisons_per_rater)
    return {
        "Title": study.title,
        "Description": "Read two answers to a question and say which is better."
        if study.mode == "preference"
        else "Read a question's two answers and say whether each is correct.",
        "Keywords": "evaluation, rating, text, comparison",
        "MaxAssignments": max(1, math.ceil(n_comparisons * study.votes_per_comparison / per_rater)),
        # A full quota at the study's lease per item at most, and never under an hour.
        "AssignmentDurationInSeconds": max(3600, per_rater * study.lease_seconds),
        "LifetimeInSeconds": 7 * 24 * 3600,
        "AutoApprovalDelayInSeconds": 3 * 24 * 3600,
    }


class MTurk(Platform):
    value = Recruitment.MTURK
    # Both frame ancestors and form-action (rater_page uses frame_hosts for both): the worker sites frame
    # the page, the submit hosts receive its form.
    frame_hosts = tuple(dict.fromkeys(WORKER_SITES + SUBMIT_HOSTS))

    def preview_template(self, params):
        return "rater/mturk_preview.html" if params.get("assignmentId") == PREVIEW else None

    def arrival(self, params):
        worker = params.get("workerId", "").strip()
        submit_to = params.get("turkSubmitTo", "").strip().rstrip("/")
        if not worker:
            return Refusal("This study is run on Mechanical Turk: please open it from the HIT.")
        if submit_to not in SUBMIT_HOSTS:
            return Refusal("This link is missing Mechanical Turk's submit address: please open it from the HIT.")
        return Arrival(
            self.value,
            worker[:200],
            params.get("hitId", "")[:200],
            params.get("assignmentId", "")[:200],
            submit_to,
        )

    def completion(self, rater, study):
        if rater.platform_submit_to in SUBMIT_HOSTS:
            return Completion(context={"mturk_action": f"{rater.platform_submit_to}/mturk/externalSubmit"})
        return Completion()
