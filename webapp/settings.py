"""stylegap settings: the one settings module, read from the environment only.

With nothing set, stylegap runs on an embedded default that needs no server:
SQLite in WAL mode (every transaction takes the write lock at BEGIN, so two raters
cannot lease the same comparison) and kombu's filesystem broker, still with a
separate Celery worker process. Set ``DATABASE_URL`` and ``REDIS_URL`` (or
``CELERY_BROKER_URL``) for Postgres and Redis.
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = env_str(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from exc


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


BASE_DIR = Path(__file__).resolve().parent.parent
# Everything the running site writes (embedded database, broker folders, uploads,
# collected static files, the generated secret key) lives here, outside git.
VAR_DIR = Path(env_str("STYLEGAP_VAR_DIR") or BASE_DIR / "var").resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        return key
    # A self-hosted default: generate once, keep it beside the embedded database.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(64))
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_results",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "inference_workers",
    "ratings",
    "judges",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "webapp.urls"
WSGI_APPLICATION = "webapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "webapp" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
# The rating path's statements are prepared once per Postgres session (ratings/engine/hotpath.py). Turn it
# off behind a pooler that hands one session's statements to another (PgBouncer in transaction mode).
PREPARED_STATEMENTS = env_bool("STYLEGAP_PREPARED_STATEMENTS", True)
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True
        )
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "stylegap.sqlite3",
            "OPTIONS": {
                # BEGIN IMMEDIATE: a transaction holds the write lock from its first
                # statement, so read-then-write (leasing a comparison) cannot interleave.
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Queue --------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or env_str("REDIS_URL") or "filesystem://localhost//"
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for sub in ("queue", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # Redis re-delivers an unacknowledged task after this long; generation jobs can run for hours.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 12 * 3600)}
# Task results land in the application database, whichever broker carries them.
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_RESULT_EXPIRES = 7 * 24 * 3600
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_CREATE_MISSING_QUEUES = True
# Housekeeping (lease release, re-sending stranded jobs) has its own queue and worker slot, so a
# multi-minute generation never delays it (bin/workers; docker-compose.yml's worker-housekeeping).
CELERY_TASK_ROUTES = {
    "inference_workers.tasks.generate_*": {"queue": "gpu"},
    "inference_workers.tasks.call_api_*": {"queue": "api"},
    "ratings.tasks.release_expired_leases": {"queue": "housekeeping"},
    "inference_workers.tasks.resume_stalled_jobs": {"queue": "housekeeping"},
    "inference_workers.tasks.resend_unsent": {"queue": "housekeeping"},
    "inference_workers.tasks.delete_expired_uploads": {"queue": "housekeeping"},
    "judges.tasks.resume_stalled_judging_jobs": {"queue": "housekeeping"},
    "inference_workers.tasks.reoffer_lapsed_shards": {"queue": "housekeeping"},
    "judges.tasks.reoffer_lapsed_judging_shards": {"queue": "housekeeping"},
}
# A worker killed mid-task leaves the message on the queue for the next worker.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BEAT_SCHEDULE = {
    "resume-stalled-generation-jobs": {
        "task": "inference_workers.tasks.resume_stalled_jobs",
        "schedule": 300.0,
    },
    # Jobs, benchmark runs and validations committed while the broker was unreachable (README, Queues).
    "resend-unsent-tasks": {"task": "inference_workers.tasks.resend_unsent", "schedule": 60.0},
    # Unfinished resumable checkpoint uploads past STYLEGAP_UPLOAD_EXPIRE_HOURS, with their partial files.
    "delete-expired-uploads": {"task": "inference_workers.tasks.delete_expired_uploads", "schedule": 3600.0},
    # Shards whose worker died (its lease lapsed) offered again to every worker (README, Scaling out).
    "reoffer-lapsed-shards": {"task": "inference_workers.tasks.reoffer_lapsed_shards", "schedule": 30.0},
    "reoffer-lapsed-judging-shards": {"task": "judges.tasks.reoffer_lapsed_judging_shards", "schedule": 30.0},
    "resume-stalled-judging-jobs": {
        "task": "judges.tasks.resume_stalled_judging_jobs",
        "schedule": 300.0,
    },
    "release-expired-leases": {
        "task": "ratings.tasks.release_expired_leases",
        "schedule": 60.0,
    },
    # Launches whose advance_launch message was lost (ratings/actions/launch.py).
    "advance-launches": {"task": "ratings.tasks.advance_launches", "schedule": 60.0},
    # Recomputes only studies whose vote count changed since their newest snapshot.
    "refresh-analysis-snapshots": {
        "task": "ratings.tasks.refresh_analysis_snapshots",
        "schedule": 300.0,
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Research API ----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["webapp.roles.IsResearcher"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "stylegap research API",
    "DESCRIPTION": "Studies, leaderboards and analysis snapshots, for researchers (token auth).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["webapp.roles.IsResearcher"],
}

# --- Auth -----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
LOGIN_REDIRECT_URL = "ratings:study-list"

# --- Internationalisation -------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Files ----------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT") or VAR_DIR / "static")
STATICFILES_DIRS = [BASE_DIR / "webapp" / "static"]
# Uploaded checkpoints are private: MEDIA_ROOT is never served over HTTP.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or VAR_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
STYLEGAP_MAX_UPLOAD_BYTES = env_int("STYLEGAP_MAX_UPLOAD_BYTES", 20 * 1024**3)
# Checkpoint archives: unpacked bytes in all, unpacked/packed ratio, and member count (decompression bombs).
STYLEGAP_MAX_UNPACKED_BYTES = env_int("STYLEGAP_MAX_UNPACKED_BYTES", 2 * STYLEGAP_MAX_UPLOAD_BYTES)
STYLEGAP_MAX_UNPACK_RATIO = env_int("STYLEGAP_MAX_UNPACK_RATIO", 20)
STYLEGAP_MAX_ARCHIVE_MEMBERS = env_int("STYLEGAP_MAX_ARCHIVE_MEMBERS", 10_000)
# A resumable checkpoint upload left unfinished this long is deleted with its partial file.
STYLEGAP_UPLOAD_EXPIRE_HOURS = env_int("STYLEGAP_UPLOAD_EXPIRE_HOURS", 72)
# Checkpoint sources beside an upload (README "Checkpoints"). A server path must lie inside one of these
# directories (the packaged SmolLM2 folder is always allowed).
STYLEGAP_CHECKPOINT_DIRS = env_list("STYLEGAP_CHECKPOINT_DIRS", str(VAR_DIR / "checkpoints"))
# The Hugging Face Hub (or a mirror) the worker downloads from, and the name of the worker's environment
# variable that holds a read token (the token itself is never stored).
STYLEGAP_HF_ENDPOINT = (env_str("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
STYLEGAP_HF_TOKEN_ENV = env_str("STYLEGAP_HF_TOKEN_ENV") or "HF_TOKEN"
# Files fetched from a Hub repo: weights as safetensors, configs, tokenizer files; never pickle.
STYLEGAP_HUB_ALLOW_PATTERNS = env_list(
    "STYLEGAP_HUB_ALLOW_PATTERNS",
    "*.safetensors,*.json,tokenizer.model,*.tiktoken,merges.txt,vocab.txt,*.jinja",
)
# GGUF files converted to safetensors once per machine, so later loads skip the conversion (gguf_cache.py),
# taking at most this many bytes of disk (the least recently used are removed first).
STYLEGAP_CONVERTED_DIR = Path(env_str("STYLEGAP_CONVERTED_DIR") or VAR_DIR / "converted")
STYLEGAP_CONVERTED_MAX_BYTES = env_int("STYLEGAP_CONVERTED_MAX_BYTES", 32 * 1024**3)
# Generation workers: loaded models kept per worker process, prompts per batch, API requests in flight.
STYLEGAP_MODEL_CACHE_SIZE = env_int("STYLEGAP_MODEL_CACHE_SIZE", 2)
STYLEGAP_GENERATION_BATCH_SIZE = env_int("STYLEGAP_GENERATION_BATCH_SIZE", 32)
# On CUDA the batch size comes from free memory and the model's KV bytes per token, up to this (devices.py).
STYLEGAP_CUDA_MAX_BATCH_SIZE = env_int("STYLEGAP_CUDA_MAX_BATCH_SIZE", 1024)
STYLEGAP_API_CONCURRENCY = env_int("STYLEGAP_API_CONCURRENCY", 8)
STYLEGAP_API_MAX_ATTEMPTS = env_int("STYLEGAP_API_MAX_ATTEMPTS", 6)
STYLEGAP_API_BACKOFF_SECONDS = float(env_str("STYLEGAP_API_BACKOFF_SECONDS") or 1.0)
# API models: key variables beyond STYLEGAP_API_KEY_*, and hosts reachable over http / on private addresses.
STYLEGAP_API_KEY_VARIABLES = env_list("STYLEGAP_API_KEY_VARIABLES")
STYLEGAP_API_LOCAL_HOSTS = env_list("STYLEGAP_API_LOCAL_HOSTS")
# While a batch decodes, its progress and heartbeat are written at most this often (seconds).
STYLEGAP_STEP_PROGRESS_EVERY_S = float(env_str("STYLEGAP_STEP_PROGRESS_EVERY_S") or 1.0)
# A running job whose heartbeat is older than this lost its worker and is queued again.
STYLEGAP_JOB_STALE_AFTER_SECONDS = env_int("STYLEGAP_JOB_STALE_AFTER_SECONDS", 30 * 60)
# A queued row whose task has not reached the broker for this long is sent again (the broker was down).
STYLEGAP_RESEND_UNSENT_AFTER_SECONDS = env_int("STYLEGAP_RESEND_UNSENT_AFTER_SECONDS", 60)
# Jobs are split into shards that any worker takes (inference_workers/shards.py), sized to take a minute or
# so on their device: prompts, benchmark items, judging orders per shard. A shard's lease is renewed by its
# worker's heartbeat; one whose lease lapses is taken over. A shard that fails this many times fails its job.
STYLEGAP_SHARD_PROMPTS = env_int("STYLEGAP_SHARD_PROMPTS", 64)
STYLEGAP_SHARD_BENCHMARK_ITEMS = env_int("STYLEGAP_SHARD_BENCHMARK_ITEMS", 128)
STYLEGAP_SHARD_JUDGING_ITEMS = env_int("STYLEGAP_SHARD_JUDGING_ITEMS", 64)
STYLEGAP_SHARD_LEASE_SECONDS = env_int("STYLEGAP_SHARD_LEASE_SECONDS", 60)
STYLEGAP_SHARD_MAX_ATTEMPTS = env_int("STYLEGAP_SHARD_MAX_ATTEMPTS", 3)
# Deliveries queued per job (one per shard, at most this many): how many workers can join it at once.
STYLEGAP_SHARD_TASKS_MAX = env_int("STYLEGAP_SHARD_TASKS_MAX", 32)
# Torch threads per worker process (0: torch's default, every core); set to 1 with one worker per core.
STYLEGAP_TORCH_THREADS = env_int("STYLEGAP_TORCH_THREADS", 0)
# A job's database step that loses its connection is retried this many times, backing off from this delay.
STYLEGAP_DB_RETRY_ATTEMPTS = env_int("STYLEGAP_DB_RETRY_ATTEMPTS", 8)
STYLEGAP_DB_RETRY_BACKOFF_SECONDS = float(env_str("STYLEGAP_DB_RETRY_BACKOFF_SECONDS") or 0.5)
# Chat templates (a researcher's, a checkpoint's) render in a helper process within these limits.
STYLEGAP_CHAT_TEMPLATE_TIMEOUT_SECONDS = float(env_str("STYLEGAP_CHAT_TEMPLATE_TIMEOUT_SECONDS") or 10)
STYLEGAP_CHAT_TEMPLATE_MAX_CHARS = env_int("STYLEGAP_CHAT_TEMPLATE_MAX_CHARS", 200_000)
STYLEGAP_CHAT_TEMPLATE_MAX_MEMORY_BYTES = env_int("STYLEGAP_CHAT_TEMPLATE_MAX_MEMORY_BYTES", 2 * 1024**3)

# --- Security -------------------------------------------------------------------
# Behind HTTPS (production) cookies are secure and HSTS is on; the local demo on
# http://127.0.0.1 sets STYLEGAP_HTTPS=0.
HTTPS = env_bool("STYLEGAP_HTTPS", not DEBUG)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = HTTPS and env_bool("SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
# Raters' pages must not leak where they came from or what they saw.
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- Raters (README "Threat model") -------------------------------------------------
# A new rater's first lease is short; the rating page extends it to the study's lease when the rater
# interacts, and a vote does too. New raters per minute are capped per client address and per study.
RATER_FIRST_LEASE_SECONDS = env_int("RATER_FIRST_LEASE_SECONDS", 90)
RATER_NEW_PER_IP_PER_MINUTE = env_int("RATER_NEW_PER_IP_PER_MINUTE", 20)
RATER_NEW_PER_STUDY_PER_MINUTE = env_int("RATER_NEW_PER_STUDY_PER_MINUTE", 120)
# Reverse proxies whose X-Forwarded-For is believed (their REMOTE_ADDR); otherwise REMOTE_ADDR is the client.
RATER_TRUSTED_PROXIES = env_list("RATER_TRUSTED_PROXIES")

# --- Logging --------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
