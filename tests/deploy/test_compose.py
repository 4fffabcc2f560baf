"""The deployment an operator relies on: docker-compose.yml and the Dockerfile.

No Django and no database here: run with ``pytest tests/deploy -p no:django``.
The file is read with PyYAML for the structural promises, then handed to the real
validator (``docker compose config -q``, or Debian's ``docker-compose`` 1.29).
"""

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

WORKERS = {"worker-gpu", "worker-cpu", "worker-housekeeping"}
EXPECTED_SERVICES = {"postgres", "redis", "migrate", "web", "beat"} | WORKERS
APP_SERVICES = {"migrate", "web", "beat"} | WORKERS
HEALTHCHECKED = {"web", "postgres", "redis"} | WORKERS
# Every queue a task is routed to (webapp/settings.py's CELERY_TASK_ROUTES, and "default").
QUEUES = {"default", "gpu", "api", "housekeeping"}
LONG_RUNNING = EXPECTED_SERVICES - {"migrate"}

# A required interpolation: ${NAME:?message} (or ${NAME?message}).
REQUIRED = r"\$\{%s:?\?[^}]*\}"

VALIDATOR_ENV = {
    "SECRET_KEY": "test-secret-key-not-used-anywhere",
    "POSTGRES_PASSWORD": "test-password",
    "STYLEGAP_HOST": "eval.example.org",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    with COMPOSE_FILE.open() as fh:
        return yaml.safe_load(fh)


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def argv(command) -> list[str]:
    """A compose command or healthcheck test (string or list) as a list of words."""
    if command is None:
        return []
    if isinstance(command, str):
        return shlex.split(command)
    return [str(word) for word in command]


def option(words: list[str], *names: str) -> str:
    for i, word in enumerate(words):
        for name in names:
            if word == name and i + 1 < len(words):
                return words[i + 1]
            if name.startswith("--") and word.startswith(name + "="):
                return word.split("=", 1)[1]
    raise AssertionError(f"none of {names} in {words}")


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def depends_on(service: dict) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def volume_mounts(service: dict) -> dict[str, str]:
    """target -> source for the short and long volume syntaxes."""
    mounts = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source", ""), volume["target"]
        mounts[target] = source
    return mounts


# --- structure -------------------------------------------------------------------------


def test_compose_spec_without_version_key(compose):
    assert "version" not in compose


def test_every_service_exists(services):
    missing = EXPECTED_SERVICES - set(services)
    assert not missing, f"missing services: {sorted(missing)}"


def test_long_running_services_restart_and_migrate_runs_once(services):
    for name in LONG_RUNNING:
        assert services[name].get("restart") == "unless-stopped", name
    assert str(services["migrate"].get("restart")) == "no"


def test_postgres_keeps_its_data_in_a_named_volume(compose, services):
    source = volume_mounts(services["postgres"]).get("/var/lib/postgresql/data")
    assert source, "postgres has no volume at /var/lib/postgresql/data"
    assert not source.startswith((".", "/")), "expected a named volume, not a bind mount"
    assert source in (compose.get("volumes") or {})


def test_redis_persists_its_queue(compose, services):
    redis = services["redis"]
    words = argv(redis.get("command"))
    assert option(words, "--appendonly") == "yes"
    source = volume_mounts(redis).get("/data")
    assert source in (compose.get("volumes") or {})


@pytest.mark.parametrize("name", sorted(HEALTHCHECKED))
def test_service_has_a_healthcheck(services, name):
    check = services[name].get("healthcheck") or {}
    assert not check.get("disable"), name
    test = argv(check.get("test"))
    assert test and test[0] in {"CMD", "CMD-SHELL"}, f"{name}: {test}"


def test_healthchecks_probe_the_right_thing(services):
    assert "pg_isready" in " ".join(argv(services["postgres"]["healthcheck"]["test"]))
    assert "redis-cli ping" in " ".join(argv(services["redis"]["healthcheck"]["test"]))
    web = " ".join(argv(services["web"]["healthcheck"]["test"]))
    assert "127.0.0.1:8000/healthz" in web
    for name, node in (("worker-gpu", "gpu@"), ("worker-cpu", "cpu@"), ("worker-housekeeping", "housekeeping@")):
        check = " ".join(argv(services[name]["healthcheck"]["test"]))
        assert "inspect ping" in check and f"-d {node}$$HOSTNAME" in check, name


def test_web_healthcheck_host_is_allowed(services):
    allowed = environment(services["web"])["ALLOWED_HOSTS"].split(",")
    assert {"localhost", "127.0.0.1"} <= set(allowed)
    assert re.fullmatch(REQUIRED % "STYLEGAP_HOST", allowed[-1])
    web = " ".join(argv(services["web"]["healthcheck"]["test"]))
    host = re.search(r"['\"]Host['\"]\s*:\s*['\"]([^'\"]+)['\"]", web)
    assert host is None or host.group(1) in allowed


def test_web_publishes_port_8000(services):
    ports = [str(port) for port in services["web"].get("ports") or []]
    assert any(port.endswith(":8000") for port in ports), ports


def test_gpu_worker_consumes_only_the_gpu_queue_and_gets_a_gpu(services):
    worker = services["worker-gpu"]
    words = argv(worker["command"])
    assert words[:4] == ["celery", "-A", "webapp", "worker"]
    assert option(words, "-Q", "--queues").split(",") == ["gpu"]
    assert option(words, "--concurrency", "-c") == "1"
    assert option(words, "--hostname", "-n") == "gpu@%h"
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices), devices
    assert environment(worker).get("NVIDIA_VISIBLE_DEVICES") == "all"
    torch = str((worker.get("build") or {}).get("args", {}).get("TORCH_SPEC", ""))
    assert "torch" in torch, "the GPU worker image must be built with torch"


def test_cpu_worker_consumes_default_and_api(services):
    words = argv(services["worker-cpu"]["command"])
    assert words[:4] == ["celery", "-A", "webapp", "worker"]
    assert set(option(words, "-Q", "--queues").split(",")) == {"default", "api"}
    assert option(words, "--hostname", "-n") == "cpu@%h"
    assert "deploy" not in services["worker-cpu"]


def test_housekeeping_has_a_worker_of_its_own(services):
    """Lease release and re-sending stranded jobs never wait behind a generation or an analysis."""
    words = argv(services["worker-housekeeping"]["command"])
    assert words[:4] == ["celery", "-A", "webapp", "worker"]
    assert option(words, "-Q", "--queues").split(",") == ["housekeeping"]
    assert int(option(words, "--concurrency", "-c")) >= 1
    for name in WORKERS - {"worker-housekeeping"}:
        assert "housekeeping" not in option(argv(services[name]["command"]), "-Q", "--queues").split(","), name


def test_every_routed_queue_has_a_worker(services):
    consumed = {q for name in WORKERS for q in option(argv(services[name]["command"]), "-Q", "--queues").split(",")}
    assert consumed == QUEUES
    routes = (ROOT / "webapp" / "settings.py").read_text()
    assert set(re.findall(r'\{"queue": "(\w+)"\}', routes)) | {"default"} == QUEUES


def embedded_workers() -> list[list[str]]:
    """The worker command lines of bin/workers (the embedded default that bin/run starts)."""
    lines = (ROOT / "bin" / "workers").read_text().splitlines()
    return [shlex.split(line)[1:] for line in lines if line.startswith("start -Q")]


def test_the_embedded_default_runs_one_cpu_heavy_job_at_a_time_and_keeps_housekeeping_apart():
    workers = {option(words, "-Q", "--queues"): words for words in embedded_workers()}
    assert {q for queues in workers for q in queues.split(",")} == QUEUES
    assert sum(len(queues.split(",")) for queues in workers) == len(QUEUES), "a queue consumed twice"
    # Local generation and substance runs (the gpu queue) get one slot: two torch processes on the
    # same cores slow each other down.
    assert option(workers["gpu"], "--concurrency", "-c") == "1"
    assert option(workers["housekeeping"], "--concurrency", "-c") == "1"
    assert "--beat" in workers["housekeeping"]


def test_beat_keeps_its_schedule_in_a_volume(compose, services):
    beat = services["beat"]
    words = argv(beat["command"])
    assert words[:4] == ["celery", "-A", "webapp", "beat"]
    schedule = option(words, "--schedule", "-s")
    mounts = volume_mounts(beat)
    assert any(schedule.startswith(target + "/") and source in compose["volumes"] for target, source in mounts.items())


def test_uploads_are_shared_by_web_and_workers(services):
    for name in ("web", *sorted(WORKERS)):
        assert volume_mounts(services[name]).get("/data/media") == "media", name
        assert environment(services[name])["MEDIA_ROOT"] == "/data/media", name


def test_workers_that_load_models_keep_their_gguf_conversions_in_a_volume(compose, services):
    """A GGUF model is converted once (about 37 s for SmolLM2) and read after from STYLEGAP_VAR_DIR's
    converted/ folder: a volume keeps it across a re-created container. The CPU worker validates
    models (it loads them); the GPU worker generates."""
    for name in ("worker-cpu", "worker-gpu"):
        var = environment(services[name])["STYLEGAP_VAR_DIR"]
        assert volume_mounts(services[name]).get(var) in compose["volumes"], name


def test_migrate_runs_before_web_and_workers(services):
    words = argv(services["migrate"]["command"])
    assert words[-3:] == ["manage.py", "migrate", "--noinput"]
    assert depends_on(services["migrate"]).get("postgres") == "service_healthy"
    for name in ("web", *sorted(WORKERS), "beat"):
        assert depends_on(services[name]).get("migrate") == "service_completed_successfully", name
    web = depends_on(services["web"])
    assert web.get("postgres") == "service_healthy"
    assert web.get("redis") == "service_healthy"


def test_app_containers_run_under_an_init_that_reaps_every_orphan(services):
    """Without an init the container's command is PID 1, and gunicorn or Celery reaps only the children it
    started: an orphan of anything below (bwrap's inner process after each sandbox check, before the worker
    reaped it itself) stayed a zombie for the container's life. Docker's init reaps them and passes signals on."""
    for name in sorted(APP_SERVICES):
        assert services[name].get("init") is True, name


def test_app_services_are_configured_for_postgres_redis_and_https(services):
    for name in APP_SERVICES:
        env = environment(services[name])
        assert env["DATABASE_URL"].startswith("postgres://stylegap:"), name
        assert env["DATABASE_URL"].endswith("@postgres:5432/stylegap"), name
        assert env["REDIS_URL"] == "redis://redis:6379/0", name
        assert env["STYLEGAP_HTTPS"] == "1", name
        assert env["SECURE_PROXY_SSL_HEADER"] == "1", name
        assert re.fullmatch(r"https://" + REQUIRED % "STYLEGAP_HOST", env["CSRF_TRUSTED_ORIGINS"]), name


def test_the_site_can_be_told_which_proxy_to_trust_for_rater_addresses(services):
    # Behind the reverse proxy every request comes from the proxy's address; the per-address cap on new
    # raters must count X-Forwarded-For from that proxy instead, so the variable reaches the site.
    assert environment(services["web"])["RATER_TRUSTED_PROXIES"] == "${RATER_TRUSTED_PROXIES:-}"


def test_no_secret_is_hard_coded(services):
    for name in APP_SERVICES:
        env = environment(services[name])
        assert re.fullmatch(REQUIRED % "SECRET_KEY", env["SECRET_KEY"]), f"{name}: {env['SECRET_KEY']}"
        password = re.fullmatch(r"postgres://stylegap:(.*)@postgres:5432/stylegap", env["DATABASE_URL"]).group(1)
        assert re.fullmatch(REQUIRED % "POSTGRES_PASSWORD", password), f"{name}: {password}"
    postgres = environment(services["postgres"])
    assert re.fullmatch(REQUIRED % "POSTGRES_PASSWORD", postgres["POSTGRES_PASSWORD"])
    # Nothing else that looks like a credential carries a literal value either.
    secretish = re.compile(r"SECRET|PASSWORD|TOKEN|API_KEY", re.IGNORECASE)
    for name, service in services.items():
        for key, value in environment(service).items():
            if secretish.search(key):
                assert value.startswith("${") and value.endswith("}"), f"{name}: {key} is hard-coded"


# --- Dockerfile ----------------------------------------------------------------------------


def test_dockerfile_runs_unprivileged_and_bakes_no_secret():
    text = DOCKERFILE.read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}
    assert not any(line.startswith(("ENV", "ARG")) and "SECRET_KEY" in line for line in lines)
    assert "collectstatic --noinput" in text
    assert "ARG TORCH_SPEC" in text
    assert "EXPOSE 8000" in text
    assert "WEB_CONCURRENCY" in text


# --- the real validator --------------------------------------------------------------------


def _validator() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        try:
            probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired):
            probe = None
        if probe is not None and probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    return None


@pytest.fixture(scope="module")
def validator() -> list[str]:
    command = _validator()
    if command is None:
        pytest.skip(
            "neither `docker compose` nor `docker-compose` is installed; "
            "CI installs Debian's docker-compose (apt-get install docker-compose) to run this"
        )
    return command


def _config(validator: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    # An empty --env-file keeps a developer's .env out of the check.
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    base = {k: v for k, v in os.environ.items() if k not in VALIDATOR_ENV and not k.startswith("COMPOSE_")}
    return subprocess.run(
        [*validator, "--env-file", str(empty_env_file), "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_validator_accepts_the_file(validator, tmp_path):
    result = _config(validator, VALIDATOR_ENV, tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", sorted(VALIDATOR_ENV))
def test_validator_refuses_to_run_without_required_settings(validator, tmp_path, missing):
    env = {k: v for k, v in VALIDATOR_ENV.items() if k != missing}
    result = _config(validator, env, tmp_path)
    assert result.returncode != 0, f"config passed without {missing}"
    assert missing in result.stderr + result.stdout
