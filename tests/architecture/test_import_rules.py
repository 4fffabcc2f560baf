"""The dependency rule, checked on the source: every import statement (top-level or inside a function)
of every module is parsed, and an edge the rule forbids fails with the file and line that makes it.

    ratings.web      -> actions, analysis, modes, platforms, models (and tasks, to queue work)
    ratings.actions  -> engine, analysis, modes, platforms, models
    ratings.modes    -> analysis, engine, models           (a mode may read results and the engine)
    ratings.analysis -> engine, models
    ratings.platforms, ratings.engine -> models
    ratings.models   -> nothing of ratings
    stats            -> numpy, scipy and the standard library only
    inference_workers -> never ratings
    judges           -> ratings (not its engine), inference_workers, stats; nothing imports judges
"""

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Which ratings rooms each room may import (every room may import itself).
RATINGS_RULES = {
    "models": set(),
    "engine": {"models"},
    "platforms": {"models"},
    "analysis": {"models", "engine"},
    "modes": {"models", "engine", "analysis"},
    "actions": {"models", "engine", "analysis", "modes", "platforms"},
    "web": {"models", "actions", "analysis", "modes", "platforms", "tasks"},
    "tasks": {"models", "actions", "analysis"},
    "admin": {"models", "actions", "tasks"},
    "demo": {"models", "actions", "analysis", "modes"},
    "management": {"models", "actions", "analysis", "demo", "modes", "tasks", "signals"},
    "apps": {"modes", "signals"},
    "signals": set(),
    "migrations": {"models"},
}


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import in the file; ``from a import b`` yields a.b as well as a."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def room(module: str) -> str | None:
    """The ratings room a module belongs to: ratings.web.rater.views -> web; ratings.models -> models."""
    parts = module.split(".")
    if parts[0] != "ratings" or len(parts) < 2:
        return None
    return parts[1]


def forbidden_edges(package: str, allowed) -> list[str]:
    edges = []
    for path in sources(package):
        source = module_name(path)
        for line, target in imports_of(path):
            if not allowed(source, target):
                edges.append(f"{path.relative_to(REPO)}:{line} imports {target}")
    return sorted(set(edges))


def ratings_allowed(source: str, target: str) -> bool:
    here, there = room(source), room(target)
    if there is None or there == here or source == "ratings":
        return True
    return there in RATINGS_RULES[here]


def stats_allowed(source: str, target: str) -> bool:
    top = target.split(".")[0]
    return top in {"numpy", "scipy", "stats", "__future__"} or top in sys.stdlib_module_names


def test_every_ratings_room_has_a_rule():
    rooms = {room(module_name(p)) for p in sources("ratings")} - {None}
    assert rooms <= set(RATINGS_RULES), f"rooms without a rule: {rooms - set(RATINGS_RULES)}"


def test_ratings_rooms_import_only_what_the_rule_allows():
    assert forbidden_edges("ratings", ratings_allowed) == []


def test_stats_imports_numpy_and_scipy_only():
    assert forbidden_edges("stats", stats_allowed) == []


def test_inference_workers_never_imports_ratings():
    assert forbidden_edges("inference_workers", lambda s, t: t.split(".")[0] != "ratings") == []


def test_nothing_imports_judges():
    # The judges app plugs into ratings through registries (payload extensions, dashboard tabs, a signal).
    for package in ("ratings", "inference_workers", "stats"):
        assert forbidden_edges(package, lambda s, t: t.split(".")[0] != "judges") == []


def test_judges_keep_out_of_the_rating_engine():
    assert forbidden_edges("judges", lambda s, t: not t.startswith("ratings.engine")) == []


def test_webapp_roles_imports_neither_app():
    # Both apps check roles, so the roles module may import neither of them.
    roles = REPO / "webapp" / "roles.py"
    assert {t.split(".")[0] for _, t in imports_of(roles)}.isdisjoint({"ratings", "inference_workers"})


def test_raw_sql_lives_in_the_engine_only():
    # Cursors and raw statements in ratings outside engine/ (migrations aside) break the rule that the
    # engine is the one place to look for SQL.
    offenders = []
    for path in sources("ratings"):
        rel = path.relative_to(REPO).as_posix()
        if rel.startswith(("ratings/engine/", "ratings/migrations/")):
            continue
        text = path.read_text()
        for needle in ("connection.cursor(", ".raw(", "RawSQL(", ".extra("):
            if needle in text:
                offenders.append(f"{rel}: {needle}")
    assert offenders == []


@pytest.mark.parametrize(
    "source, target, allowed",
    [
        ("ratings.web.rater.views", "ratings.actions.votes", True),
        ("ratings.web.rater.views", "ratings.engine.assignment", False),
        ("ratings.analysis.payload", "ratings.actions.snapshots", False),
        ("ratings.engine.assignment", "ratings.modes", False),
        ("ratings.models", "ratings.modes.fact_check", False),
    ],
)
def test_the_checker_tells_allowed_from_forbidden_edges(source, target, allowed):
    # The rule test is only as good as its checker: known edges, both ways.
    assert ratings_allowed(source, target) is allowed


def test_the_checker_finds_an_import_inside_a_function(tmp_path):
    module = tmp_path / "late.py"
    module.write_text("def f():\n    from ratings.engine import assignment\n    return assignment\n")
    assert (2, "ratings.engine") in imports_of(module)
