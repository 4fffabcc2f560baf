"""The Vicuna-80 human votes loaded once per module, and removed afterwards."""

import pytest

from inference_workers.models import LanguageModel, PromptSet, Response
from ratings.demo.studies import PROMPT_SET_NAME
from ratings.demo.vicuna80_votes import CATALOGUE, load_vicuna80_votes
from ratings.models import Study


def remove_vicuna80_votes() -> None:
    Study.objects.filter(prompt_set__name=PROMPT_SET_NAME).delete()
    Response.objects.filter(prompt__prompt_set__name=PROMPT_SET_NAME).delete()
    PromptSet.objects.filter(name=PROMPT_SET_NAME).delete()
    LanguageModel.objects.filter(name__in=CATALOGUE).delete()


@pytest.fixture(scope="module")
def vicuna80_study(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        study = load_vicuna80_votes().study
        yield study
        remove_vicuna80_votes()
