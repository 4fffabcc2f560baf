"""Amazon Mechanical Turk: an ExternalQuestion shown in MTurk's iframe. Workers arrive with workerId,
assignmentId, hitId and turkSubmitTo (checked against MTurk's hosts); a HIT preview shows a page
without entering; a finished worker posts the externalSubmit form back to MTurk."""

from ratings.models import Recruitment
from ratings.platforms.base import Arrival, Completion, Platform, Refusal

PREVIEW = "ASSIGNMENT_ID_NOT_AVAILABLE"
# turkSubmitTo: where the finished HIT's form posts (production, sandbox).
SUBMIT_HOSTS = ("https://www.mturk.com", "https://workersandbox.mturk.com")
# The worker sites whose HIT page frames an ExternalQuestion (production, sandbox).
WORKER_SITES = ("https://worker.mturk.com", "https://workersandbox.mturk.com")


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
