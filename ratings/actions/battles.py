"""Storing battles (``ratings/analysis/battle_files.py`` reads them) as an imported study's votes.

One pass over the battles, a chunk at a time (``CHUNK`` battles): new models, prompts, answers,
comparisons, raters and votes of a chunk are written through a ``ratings.engine.bulk.BulkWriter``
(Postgres COPY, run by a background thread while the next chunk is read and built; bulk_create
elsewhere), so memory holds a few chunks plus the keys seen so far, and
every vote is written once with its own ``created_at`` (the battle's ``tstamp``, else now). The
whole import is one transaction: all or nothing.

Identity: a prompt per (question id, turn) (``prompt_external_id``); an answer per (model, prompt,
text digest) (``answer_digest``), so different texts never merge; a rater per judge (``Rater`` with
platform "imported"). A judge voting twice on the same pair of answers has one vote linked to the
rater (the database allows one vote per rater and comparison); the repeat is kept without the link
and counted in ``ImportResult.repeat_votes``.
"""

import gc
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from itertools import islice

from django.db import transaction
from django.utils import timezone

from inference_workers.actions import imported_decoding_config
from inference_workers.models import LanguageModel, ModelKind, ModelRole, ModelStatus, Prompt, PromptSet, Response
from ratings.analysis.battles import WINNER_TO_VOTE, Battle, answer_digest, prompt_external_id
from ratings.engine.bulk import BulkWriter, check_references_now
from ratings.models import Comparison, Rater, Recruitment, Study, StudyStatus, Vote, VoteSource

CHUNK = 20_000
_NO_STYLE = (None, None, None, None, None)
_WINNER_VALUE = {winner: vote.value for winner, vote in WINNER_TO_VOTE.items()}
RESPONSE_COLUMNS = (
    "model_id",
    "prompt_id",
    "decoding_config_id",
    "text",
    "text_digest",
    "turns",
    "length_words",
    "n_headers",
    "n_list_items",
    "n_bold",
    "style_computed_at",
)


@dataclass(frozen=True)
class ImportResult:
    study: Study
    votes: int
    new_models: list[str]
    new_prompts: int
    new_responses: int
    new_comparisons: int
    new_raters: int = 0
    repeat_votes: int = 0
    # How the database checked the new rows' references: "in bulk", or "per row (why)"; see
    # ratings.engine.bulk.
    references: str = ""


def _study_for(slug: str) -> Study:
    study = Study.objects.filter(slug=slug).select_related("prompt_set").first()
    if study is not None:
        return study
    prompt_set, _ = PromptSet.objects.get_or_create(
        name=slug[:100],
        defaults={
            "title": f"Questions of {slug}",
            "source": "Imported with battles (Chatbot Arena clean-battle JSON or JSONL).",
        },
    )
    return Study.objects.create(
        slug=slug,
        title=slug,
        prompt_set=prompt_set,
        imported=True,
        status=StudyStatus.CLOSED,
        votes_per_comparison=1,
        recruitment=Recruitment.IMPORTED,
    )


# Keys are single integers, not tuples: one import holds millions of them (a tuple of three costs
# about 150 bytes more). Ids stay below 2**48.
def _answer_key(model_id: int, prompt_id: int, digest: str) -> int:
    """(model, prompt, 64 bits of the text digest and its kind) as one integer."""
    return (((model_id << 48) | prompt_id) << 66) | (int(digest[1:17], 16) << 2) | _DIGEST_KIND[digest[0]]


_DIGEST_KIND = {"t": 0, "m": 1, "n": 2}  # "tmn".index


def _pair_key(first: int, second: int) -> int:
    return (first << 48) | second


class _Importer:
    """The keys seen so far (existing rows of the study and its prompt set, then new ones)."""

    def __init__(self, study: Study, model_defaults: dict[str, dict], writer: BulkWriter):
        self.study = study
        self.writer = writer
        self.prompt_set = study.prompt_set
        self.config = imported_decoding_config()
        self.model_defaults = model_defaults
        self.models: dict[str, int] = {}
        self.new_models: list[str] = []
        self.prompts = dict(self.prompt_set.prompts.values_list("external_id", "pk"))
        self.answers: dict[int, int] = {}
        for pk, model_id, prompt_id, digest, text in Response.objects.filter(
            prompt__prompt_set=self.prompt_set
        ).values_list("pk", "model_id", "prompt_id", "text_digest", "text"):
            self.answers.setdefault(_answer_key(model_id, prompt_id, digest or answer_digest(text, None)), pk)
        self.comparisons = {
            _pair_key(a, b): pk for pk, a, b in study.comparisons.values_list("pk", "response_a", "response_b")
        }
        self.raters = dict(
            Rater.objects.filter(study=study, platform=Recruitment.IMPORTED).values_list("external_id", "pk")
        )
        self.voted = {
            _pair_key(r, c)
            for r, c in Vote.objects.filter(comparison__study=study, rater__isnull=False).values_list(
                "rater_id", "comparison_id"
            )
        }
        self.counts = {"votes": 0, "prompts": 0, "responses": 0, "comparisons": 0, "raters": 0, "repeats": 0}

    def _models(self, battles: list[Battle]) -> None:
        names = {b.model_a for b in battles} | {b.model_b for b in battles}
        missing = sorted(names - self.models.keys())
        if not missing:
            return
        self.writer.wait()  # the queries below need the connection the COPYs use
        found = dict(LanguageModel.objects.filter(name__in=missing).values_list("name", "pk"))
        for name in missing:
            if name not in found:
                defaults = {
                    "role": ModelRole.IMITATION,
                    "notes": "Created by a battle import; check its role and metadata.",
                    **self.model_defaults.get(name, {}),
                }
                found[name] = LanguageModel.objects.create(
                    name=name, kind=ModelKind.IMPORTED, status=ModelStatus.READY, **defaults
                ).pk
                self.new_models.append(name)
        self.models.update(found)
        self.study.language_models.add(*[found[n] for n in missing])

    def _prompts(self, battles: list[Battle]) -> list[int]:
        keys, rows, fresh = [], [], {}
        known, prompt_set = self.prompts, self.prompt_set.pk
        for b in battles:
            key = prompt_external_id(b.question_id, b.turn)
            keys.append(key)
            if key not in known and key not in fresh:
                fresh[key] = len(rows)
                text = b.question or f"(question {b.question_id}: its text was not in the battle file)"
                turns = [{"role": "user", "content": q} for q in b.questions] if len(b.questions) > 1 else None
                rows.append((prompt_set, key, text, turns, b.category))
        new_ids = self.writer.insert(
            Prompt, ("prompt_set_id", "external_id", "text", "turns", "category"), rows, ids=True
        )
        for key, n in fresh.items():
            self.prompts[key] = new_ids[n]
        self.counts["prompts"] += len(rows)
        return [self.prompts[k] for k in keys]

    def _answers(self, battles: list[Battle], prompt_ids: list[int]) -> list[tuple[int, int]]:
        now = timezone.now()
        pairs, rows, fresh = [], [], {}
        known, models, config = self.answers, self.models, self.config.pk
        for b, prompt_id in zip(battles, prompt_ids, strict=True):
            pair = []
            for name, text, turns, meta in (
                (b.model_a, b.answer_a, b.turns_a, b.meta_a),
                (b.model_b, b.answer_b, b.turns_b, b.meta_b),
            ):
                digest = answer_digest(text, meta)
                model = models[name]
                key = _answer_key(model, prompt_id, digest)
                if key not in known and key not in fresh:
                    fresh[key] = len(rows)
                    # Without a text, the file's conv_metadata counts are this answer's style features.
                    style = (*meta, now) if text is None and meta is not None else _NO_STYLE
                    multi = list(turns) if turns is not None and len(turns) > 1 else None
                    rows.append((model, prompt_id, config, text or "", digest, multi, *style))
                pair.append(key)
            pairs.append(pair)
        new_ids = self.writer.insert(Response, RESPONSE_COLUMNS, rows, ids=True)
        for key, n in fresh.items():
            self.answers[key] = new_ids[n]
        self.counts["responses"] += len(rows)
        return [(self.answers[ka], self.answers[kb]) for ka, kb in pairs]

    def _comparisons(self, pairs: list[tuple[int, int]], prompt_ids: list[int]) -> list[int]:
        rows, fresh, keys = [], {}, []
        known, study = self.comparisons, self.study.pk
        for (ra, rb), prompt_id in zip(pairs, prompt_ids, strict=True):
            key = _pair_key(ra, rb)
            keys.append(key)
            if key not in known and key not in fresh:
                fresh[key] = len(rows)
                rows.append((study, prompt_id, ra, rb))
        new_ids = self.writer.insert(
            Comparison, ("study_id", "prompt_id", "response_a_id", "response_b_id"), rows, ids=True
        )
        for key, n in fresh.items():
            self.comparisons[key] = new_ids[n]
        self.counts["comparisons"] += len(rows)
        return [self.comparisons[k] for k in keys]

    def _raters(self, battles: list[Battle]) -> None:
        fresh = sorted({b.judge for b in battles if b.judge} - self.raters.keys())
        rows = [(self.study.pk, Recruitment.IMPORTED.value, judge) for judge in fresh]
        new_ids = self.writer.insert(Rater, ("study_id", "platform", "external_id"), rows, ids=True)
        self.raters.update(zip(fresh, new_ids, strict=True))
        self.counts["raters"] += len(rows)

    def chunk(self, battles: list[Battle]) -> None:
        self._models(battles)
        prompt_ids = self._prompts(battles)
        pairs = self._answers(battles, prompt_ids)
        comparison_ids = self._comparisons(pairs, prompt_ids)
        self._raters(battles)
        now = timezone.now()
        rows = []
        raters, voted, imported = self.raters, self.voted, VoteSource.IMPORTED.value
        for b, comparison_id in zip(battles, comparison_ids, strict=True):
            rater_id = raters.get(b.judge) if b.judge else None
            if rater_id is not None:
                key = _pair_key(rater_id, comparison_id)
                if key in voted:
                    rater_id = None
                    self.counts["repeats"] += 1
                else:
                    voted.add(key)
            created = datetime.fromtimestamp(b.tstamp, tz=UTC) if b.tstamp is not None else now
            rows.append((comparison_id, rater_id, imported, _WINNER_VALUE[b.winner], b.judge, created))
        self.writer.insert(Vote, ("comparison_id", "rater_id", "source", "winner", "judge", "created_at"), rows)
        self.counts["votes"] += len(rows)


@contextmanager
def _collector_paused():
    """Python's cycle collector off for the import: its millions of short-lived, acyclic objects (battles,
    rows) set it off thousands of times, each pass walking the long-lived key maps, for 15% of the
    import's CPU. Reference counting still frees them; the collector is back on at the end."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@transaction.atomic
def do_import_battles(
    slug: str,
    battles: Iterable[Battle],
    model_defaults: dict[str, dict] | None = None,
    progress: Callable[[int], None] | None = None,
    bulk_checks: bool = True,
    checking: Callable[[int], None] | None = None,
) -> ImportResult:
    """Store battles as imported votes in the study ``slug`` (created when missing), with their models,
    prompts, answers, comparisons and raters (one per judge). All or nothing.

    An answer already stored for the model, question and turn with the same text is reused.
    ``model_defaults`` gives fields for models created here (role, display name, metadata);
    ``progress`` is called with the number of battles stored after each chunk. The foreign keys of the
    new rows are checked in bulk at the end where the database allows it (``bulk_checks``; see
    ``ratings.engine.bulk``), else row by row as they are written; ``checking`` is called with the
    number of rows to check in bulk before that check.
    """
    check_references_now()
    study = _study_for(slug)
    with _collector_paused(), BulkWriter(bulk_checks=bulk_checks, checking=checking) as writer:
        importer = _Importer(study, model_defaults or {}, writer)
        battles = iter(battles)
        while chunk := list(islice(battles, CHUNK)):
            importer.chunk(chunk)
            if progress:
                writer.then(partial(progress, importer.counts["votes"]))
    c = importer.counts
    return ImportResult(
        study=importer.study,
        votes=c["votes"],
        new_models=importer.new_models,
        new_prompts=c["prompts"],
        new_responses=c["responses"],
        new_comparisons=c["comparisons"],
        new_raters=c["raters"],
        repeat_votes=c["repeats"],
        references=writer.references,
    )
