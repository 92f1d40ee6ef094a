"""Django settings for VisionLab, read from environment variables.

Every variable is listed with its default in `.env.example`. The embedded default needs none
of them: SQLite and files under DATA_DIR (./var), and the Redis that `make run` starts.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

from webapp.env import (
    env_bool,
    env_float,
    env_int,
    env_list,
    env_proxies,
    env_rate,
    env_secret,
    env_size,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent

# Everything VisionLab writes lives under DATA_DIR: database, uploads, artifacts, logs.
# A relative DATA_DIR is taken from the project folder, wherever a process starts.
DATA_DIR = (BASE_DIR / env_str("DATA_DIR", "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

# Keras writes its config and downloads under KERAS_HOME (default ~/.keras) when imported;
# keep that inside DATA_DIR too, for every process that loads these settings.
os.environ.setdefault("KERAS_HOME", str(DATA_DIR / "keras"))

SECRET_KEY = env_secret("SECRET_KEY", DATA_DIR / "secret_key")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Behind a TLS-terminating proxy, set SECURE_PROXY=1 so Django trusts X-Forwarded-Proto.
if env_bool("SECURE_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
# Reverse proxies in front of the web server whose X-Forwarded-For is believed when rate limits
# and login throttling look for the client's address: how many there are (TRUSTED_PROXIES=1), or
# their addresses (TRUSTED_PROXIES=10.0.0.5,172.16.0.0/12). Unset, the header is ignored: a client
# writes it, so believing it would let anyone pick the address its limits are counted under.
TRUSTED_PROXY_COUNT, TRUSTED_PROXY_NETWORKS = env_proxies("TRUSTED_PROXIES")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "webapp.accounts",
    "webapp.datasets",
    "webapp.experiments",
    "webapp.jobs",
    "webapp.sweeps",
    "webapp.demos",
    "webapp.ops",
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
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            # Nearly every page links static files and prints numbers and times for people: these two
            # libraries are loaded for every template, which then loads only its own (`params`).
            "builtins": ["django.templatetags.static", "django.contrib.humanize.templatetags.humanize"],
        },
    },
]

# SQLite in DATA_DIR unless DATABASE_URL names another database (PostgreSQL for scale-out).
# WAL and IMMEDIATE transactions let the web server and the workers write side by side.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'visionlab.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0, minimum=0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # Seconds a write waits for another's lock before "database is locked" (the busy timeout).
        "timeout": env_float("DATABASE_TIMEOUT", 30.0),
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests share their database with a real worker process, so it must be a file.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-visionlab.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "datasets"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Container images collect static files at build time, outside the /data volume.
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(DATA_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # WhiteNoise's CompressedManifestStaticFilesStorage, compressing a content once (webapp/ops/static_storage.py).
    "staticfiles": {"BACKEND": "webapp.ops.static_storage.CompressedManifestStorage"},
}
MEDIA_ROOT = DATA_DIR / "media"

# Uploads: request bodies above these sizes are refused; files above the memory limit are
# streamed to DATA_DIR/tmp instead of RAM.
MAX_UPLOAD_SIZE = env_size("MAX_UPLOAD_SIZE", "10GiB")
DATA_UPLOAD_MAX_MEMORY_SIZE = env_size("DATA_UPLOAD_MAX_MEMORY_SIZE", "5MiB")
FILE_UPLOAD_MAX_MEMORY_SIZE = env_size("FILE_UPLOAD_MAX_MEMORY_SIZE", "5MiB")
# Chunks of a resumable upload (the browser sends them one by one; scripts may use multipart).
UPLOAD_CHUNK_SIZE = env_size("UPLOAD_CHUNK_SIZE", "8MiB")
FILE_UPLOAD_TEMP_DIR = DATA_DIR / "tmp"
FILE_UPLOAD_TEMP_DIR.mkdir(exist_ok=True)

# Ingestion limits: what an archive may inflate to, and the largest image (pixels) decoded.
INGEST_MAX_INFLATED = env_size("INGEST_MAX_INFLATED", "20GiB")
INGEST_MAX_FILES = env_int("INGEST_MAX_FILES", 1_000_000, minimum=1)
INGEST_MAX_PIXELS = env_int("INGEST_MAX_PIXELS", 60_000_000, minimum=1)
INGEST_THREADS = env_int("INGEST_THREADS", 4, minimum=1)
# Where the one-click reference datasets (MNIST, ...) come from on air-gapped sites (file:// or http).
DATASET_MIRROR = env_str("VISIONLAB_DATASET_MIRROR", "")

# Redis carries the job queues and live progress. `make run` starts its own and sets this.
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
# How long /healthz and the pages wait for Redis and for worker pings before calling them down.
HEALTH_TIMEOUT = env_float("HEALTH_TIMEOUT", 1.0)
# Django's cache is the same Redis: DRF's throttles keep their counts there, shared by every web
# process (webapp.throttling). A Redis outage lets requests through rather than failing them.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "visionlab:cache",
        "OPTIONS": {"socket_connect_timeout": HEALTH_TIMEOUT, "socket_timeout": max(HEALTH_TIMEOUT, 5.0)},
    }
}

# Celery reads every CELERY_* setting here (jobs/celery.py).
CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A long job holds its message unacknowledged (acks_late); the visibility timeout must outlast
# the longest job or Redis hands it to a second worker (which then finds it claimed).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("JOB_VISIBILITY_TIMEOUT", 48 * 3600, minimum=60),
    "socket_connect_timeout": 2,
    "socket_timeout": 10,
    # Ten priority levels (0 is served first): launch_job queues a user's job later the more jobs
    # that user already has waiting, so nobody's first job waits behind another's thousandth.
    "priority_steps": list(range(10)),
}
# Jobs record their outcome on the Job row; only inference tasks (a person waits for the
# answer) return results, through Redis, kept briefly.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = REDIS_URL
# The web process reads an answer the moment it is stored (and forgets it when it gave up), so a
# minute is plenty; it bounds what answers nobody read (and expired questions) keep in Redis.
CELERY_RESULT_EXPIRES = 60
# How long the web process waits for an inference worker (predict, caption, model summary); a
# question not started by then expires unanswered rather than being computed for nobody.
INFERENCE_TIMEOUT = env_float("INFERENCE_TIMEOUT", 30.0)
# Questions (each with its photo) the `inference` queue may hold; past this, 503 at once.
INFERENCE_MAX_QUEUE = env_int("INFERENCE_MAX_QUEUE", 32, minimum=1)
# The largest photo accepted by predict/caption endpoints.
PREDICT_MAX_BYTES = env_size("PREDICT_MAX_BYTES", "20MiB")
# Pixels the inference worker decodes at most for one photo (predict, caption, the demo): far below
# ingestion's limit, since a model sees a few hundred pixels a side. JPEGs decode scaled down, so
# their headers may claim 16 times more.
INFERENCE_MAX_PIXELS = env_int("INFERENCE_MAX_PIXELS", 16_000_000, minimum=1)
# The public caption demo: the largest photo it takes, and how many captions one client
# (IP address) may ask of one demo per minute.
DEMO_MAX_BYTES = env_size("DEMO_MAX_BYTES", "8MiB")
DEMO_RATE_PER_MINUTE = env_int("DEMO_RATE_PER_MINUTE", 30, minimum=1)
# Failed logins (the login page, the admin's, and API requests with a wrong token) allowed per
# client address and per username before logging in is refused for a while (429, with a sentence).
LOGIN_FAILURES_PER_IP = env_rate("LOGIN_FAILURES_PER_IP", "30/hour")
LOGIN_FAILURES_PER_USERNAME = env_rate("LOGIN_FAILURES_PER_USERNAME", "10/hour")
# The largest feature extractor a user may upload (VGG16 with its top is about 530 MiB).
BACKBONE_MAX_BYTES = env_size("BACKBONE_MAX_BYTES", "1GiB")
# An uploaded model is first opened and run on a few photos in a child process (jobs.sandbox),
# stopped past this wall-clock time or resident memory.
SANDBOX_SECONDS = env_float("SANDBOX_SECONDS", 90.0)
# Modules beyond webapp/jobs/kinds/ that each register a job kind (webapp.jobs.registry), e.g. a site's own.
EXTRA_JOB_KINDS = env_list("EXTRA_JOB_KINDS", [])
SANDBOX_MEMORY_BYTES = env_size("SANDBOX_MEMORY", "4GiB")
# Launches (webapp/jobs/limits.py). Optional per-user quotas (0: none): jobs queued or
# running at once, and bytes of datasets, models and backbones kept.
USER_MAX_ACTIVE_JOBS = env_int("USER_MAX_ACTIVE_JOBS", 0, minimum=0)
USER_STORAGE_QUOTA = env_size("USER_STORAGE_QUOTA", "0")
# The memory one training job may use on a worker (0: this machine's physical memory); a launch
# whose estimate (weights, optimizer state, the batch's activations) exceeds it is refused.
WORKER_MEMORY = env_size("WORKER_MEMORY", "0")
# Fair turns: a user's job is queued one priority step later per this many jobs already waiting.
FAIR_SHARE_STEP = env_int("FAIR_SHARE_STEP", 3, minimum=1)
# Sweeps (webapp/sweeps): the most trials one sweep runs (extending it adds more).
SWEEP_MAX_TRIALS = env_int("SWEEP_MAX_TRIALS", 200, minimum=1)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_SEND_TASK_EVENTS = False

# Seconds a worker's presence record lasts in Redis without its heartbeat (every 5 s) refreshing it.
WORKER_PRESENCE_TTL = env_int("WORKER_PRESENCE_TTL", 20, minimum=6)

# Live progress: a worker publishes to Redis at most this often per job (seconds), and
# writes progress to the database at most this often; epoch metrics are always persisted.
PROGRESS_PUBLISH_INTERVAL = env_float("PROGRESS_PUBLISH_INTERVAL", 0.25)
PROGRESS_PERSIST_INTERVAL = env_float("PROGRESS_PERSIST_INTERVAL", 2.0)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an anonymous API call then gets 401 with a WWW-Authenticate header.
        # DRF's, with a limit on wrong tokens per client address (429 past it).
        "webapp.throttling.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # QueueUnavailable and InferenceUnavailable, raised by any view, answer 503 {"detail"} (webapp/api_errors.py).
    "EXCEPTION_HANDLER": "webapp.api_errors.exception_handler",
    # Every list answers a page: {"count", "next", "previous", "results"}, ?page= and ?page_size= (at most 200).
    "DEFAULT_PAGINATION_CLASS": "webapp.pagination.PageNumberPagination",
    # Throttles find the client through webapp.throttling.client_ip: X-Forwarded-For only from
    # TRUSTED_PROXIES (0: never, whatever a client writes in it).
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    # (The demo's rate is DEMO_RATE_PER_MINUTE.)
    "DEFAULT_THROTTLE_RATES": {
        "login_ip": LOGIN_FAILURES_PER_IP,
        "login_username": LOGIN_FAILURES_PER_USERNAME,
    },
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "VisionLab API",
    "DESCRIPTION": "Datasets, jobs, trained models and demos. Authenticate with a session "
    "or `Authorization: Token <key>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Datasets and jobs both have a `kind` and a `status`, with different choices.
    "ENUM_NAME_OVERRIDES": {
        "DatasetKindEnum": "webapp.datasets.models.Dataset.Kind",
        "DatasetStatusEnum": "webapp.datasets.models.Dataset.Status",
        "JobKindEnum": "webapp.jobs.registry.choices",
        "JobStatusEnum": "webapp.jobs.models.Job.Status",
        "SweepStatusEnum": "webapp.sweeps.models.Sweep.Status",
        "ExportFormatEnum": "webapp.experiments.kinds.export_model.EXPORT_FORMATS",
        "SweepMethodEnum": "webapp.sweeps.models.Sweep.Method",
        "SweepPruningEnum": "webapp.sweeps.models.Sweep.Pruning",
    },
}

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django": {"handlers": ["console"], "level": "WARNING", "propagate": False}},
}
