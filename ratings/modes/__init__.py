"""Study modes: what a rater is asked about a pair, and what the answers add up to.

One module per ``StudyMode`` value, each a ``Mode`` (``base.py``) registered in ``MODES`` below. The
engine (leases, k judgements per item, left / right drawn per assignment, attention checks) is the same
for every mode; a mode says which page the rater sees, how the form becomes a vote, when a study may
open, and what its own results are. Add a mode: one module with a ``Mode`` subclass, its value in
``ratings.models.StudyMode`` (and the migration Django writes for the new choice), one line here.
"""

from ratings.models import Study, StudyMode
from ratings.modes.base import Judgement, Mode
from ratings.modes.fact_check import FactCheck
from ratings.modes.preference import Preference

MODES: dict[str, Mode] = {
    StudyMode.PREFERENCE: Preference(),
    StudyMode.FACT_CHECK: FactCheck(),
}


def mode_for(study: Study) -> Mode:
    """The study's mode; a study whose mode is not registered is refused loudly, never rated as another."""
    return MODES[study.mode]


__all__ = ["MODES", "Judgement", "Mode", "mode_for"]
