"""Published scores with their sources: import, refusals that name the line, disagreeing sources."""

import csv
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.urls import reverse

from inference_workers.models import Benchmark, BenchmarkRun
from inference_workers.substance.published import PREFERENCE_RULE, import_published_scores, preferred
from tests import factories

pytestmark = pytest.mark.django_db

SCORES = Path(settings.BASE_DIR) / "data" / "published-substance" / "scores.csv"
DEMO_MODELS = ["gpt4", "gpt35", "claude", "bard", "vicuna-13b", "guanaco-7b", "guanaco-13b", "guanaco-33b"]
HEADER = "model,benchmark,setting,score,source,source_detail,note\n"


def register(*names):
    return {name: factories.model(name=name) for name in names}


def test_the_demo_file_imports_the_chosen_rows_and_counts_the_rest(capsys):
    register(*DEMO_MODELS, "guanaco-65b", "llama-13b")
    call_command(
        "import_published_scores", str(SCORES), "--benchmarks", "mmlu,humaneval,nq_open", "--known-models-only"
    )
    with SCORES.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    known = set(DEMO_MODELS) | {"guanaco-65b", "llama-13b"}
    wanted = [r for r in rows if r["benchmark"] in {"mmlu", "humaneval", "nq_open"} and r["model"] in known]
    out = capsys.readouterr().out
    assert out.startswith(f"{len(wanted)} published scores imported, 0 already there")
    assert "model not registered" in out and "not selected" in out
    runs = BenchmarkRun.objects.filter(published=True)
    assert runs.count() == len(wanted)
    gpt4 = runs.get(model__name="gpt4", benchmark=Benchmark.MMLU, citation__startswith="OpenAI 2023")
    assert gpt4.accuracy == pytest.approx(0.864) and gpt4.setting == "5-shot"
    assert "fliphtml5" in gpt4.source_detail and "pre-trained base GPT-4" in gpt4.note
    # The PaLM 2 proxy row is not about a registered model: Bard gets no MMLU score from it.
    assert not runs.filter(model__name="bard").exists()
    # A second import finds every row already there.
    call_command(
        "import_published_scores", str(SCORES), "--benchmarks", "mmlu,humaneval,nq_open", "--known-models-only"
    )
    assert capsys.readouterr().out.startswith(f"0 published scores imported, {len(wanted)} already there")
    assert BenchmarkRun.objects.filter(published=True).count() == len(wanted)


@pytest.mark.parametrize(
    "line,message",
    [
        ("nobody,mmlu,5-shot,0.5,A paper,,", "line 3: unknown model 'nobody'"),
        ("gpt4,triviaqa,5-shot,0.5,A paper,,", "line 3: unknown benchmark 'triviaqa'"),
        ("gpt4,mmlu,5-shot,86.4,A paper,,", "line 3: score 86.4 is outside 0..1"),
        ("gpt4,mmlu,5-shot,-0.1,A paper,,", "line 3: score -0.1 is outside 0..1"),
        ("gpt4,mmlu,5-shot,0.5,,,", "line 3: the source is missing"),
        ("gpt4,mmlu,5-shot,high,A paper,,", "line 3: score 'high' is not a number"),
    ],
)
def test_a_bad_line_is_named_and_nothing_is_written(tmp_path, line, message):
    register("gpt4")
    path = tmp_path / "scores.csv"
    path.write_text(HEADER + "gpt4,mmlu,5-shot,0.864,GPT-4 report,,\n" + line + "\n")
    with pytest.raises(CommandError) as error:
        call_command("import_published_scores", str(path))
    assert message in str(error.value) and "nothing was imported" in str(error.value)
    assert BenchmarkRun.objects.count() == 0


def test_a_missing_column_is_refused(tmp_path):
    path = tmp_path / "scores.csv"
    path.write_text("model,benchmark,score,source\ngpt4,mmlu,0.8,x\n")
    with pytest.raises(CommandError, match="line 1: the header lacks setting, source_detail, note"):
        call_command("import_published_scores", str(path))


def test_disagreeing_sources_are_all_kept_and_the_stated_rule_picks_one():
    register("claude")
    two = (
        HEADER
        + "claude,mmlu,5-shot,0.756,LMSYS June 2023,,\n"
        + "claude,mmlu,5-shot (Nov),0.77,LMSYS November 2023,,\n"
    )
    import_published_scores(two)
    runs = list(BenchmarkRun.objects.filter(model__name="claude", benchmark=Benchmark.MMLU))
    assert sorted(r.accuracy for r in runs) == [0.756, 0.77]  # both kept, never averaged
    assert preferred(runs).accuracy == 0.756  # no primary, no dates: the one listed first
    assert "primary source first, then the newest" in PREFERENCE_RULE

    BenchmarkRun.objects.all().delete()
    dated = (
        "model,benchmark,setting,score,source,source_detail,note,primary,published_on\n"
        "claude,mmlu,5-shot,0.756,LMSYS June 2023,,,,2023-06-22\n"
        "claude,mmlu,5-shot,0.77,LMSYS November 2023,,,,2023-11\n"
    )
    import_published_scores(dated)
    assert preferred(list(BenchmarkRun.objects.all())).accuracy == 0.77  # the newest

    BenchmarkRun.objects.all().delete()
    with_primary = (
        "model,benchmark,setting,score,source,source_detail,note,primary,published_on\n"
        "claude,mmlu,5-shot,0.756,Anthropic model card,,,yes,2023-03\n"
        "claude,mmlu,5-shot,0.77,LMSYS November 2023,,,,2023-11\n"
    )
    import_published_scores(with_primary)
    assert preferred(list(BenchmarkRun.objects.all())).accuracy == 0.756  # the primary source, though older


def test_a_bad_date_is_named(tmp_path):
    register("claude")
    text = "model,benchmark,setting,score,source,source_detail,note,published_on\nclaude,mmlu,,0.7,X,,,June\n"
    with pytest.raises(ValueError, match="line 2: published_on 'June'"):
        import_published_scores(text)
    assert BenchmarkRun.objects.count() == 0


def test_the_admin_imports_a_file_and_names_a_bad_line(admin_client, tmp_path):
    register("gpt4")
    url = reverse("admin:inference_workers_benchmarkrun_import_published")
    assert (
        "Import published scores"
        in admin_client.get(reverse("admin:inference_workers_benchmarkrun_changelist")).content.decode()
    )
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "gpt4,mmlu,5-shot,1.5,A paper,,\n")
    with bad.open("rb") as fh:
        page = admin_client.post(url, {"file": fh}).content.decode()
    assert "line 2: score 1.5 is outside 0..1" in page and "nothing was imported" in page
    assert BenchmarkRun.objects.count() == 0
    good = tmp_path / "good.csv"
    good.write_text(HEADER + "gpt4,mmlu,5-shot,0.864,GPT-4 report,Table 2,base model\n")
    with good.open("rb") as fh:
        response = admin_client.post(url, {"file": fh})
    assert response.status_code == 302
    run = BenchmarkRun.objects.get()
    assert (run.published, run.accuracy, run.citation, run.source_detail) == (True, 0.864, "GPT-4 report", "Table 2")


def test_a_model_names_the_model_it_was_fine_tuned_from():
    models = register("llama-13b", "guanaco-13b", "vicuna-13b")
    for name in ("guanaco-13b", "vicuna-13b"):
        models[name].fine_tuned_from = models["llama-13b"]
        models[name].save()
    assert sorted(m.name for m in models["llama-13b"].fine_tunes.all()) == ["guanaco-13b", "vicuna-13b"]
