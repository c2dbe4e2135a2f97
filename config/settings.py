"""Tickmark settings, read from the environment (DESIGN §10).

Embedded default: SQLite, in-memory channel layer, in-process worker.
Production: DATABASE_URL (PostgreSQL), REDIS_URL, PUBLIC_BASE_URL, SECRET_KEY, ALLOWED_HOSTS.
"""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    # Embedded/dev mode only: a fixed key would be a secret in git, a random one per boot
    # would log everyone out on restart, so derive one per checkout and keep it local.
    key_file = BASE_DIR / "var" / "secret_key"
    key_file.parent.mkdir(exist_ok=True)
    if not key_file.exists():
        import secrets

        key_file.write_text(secrets.token_urlsafe(50))
    SECRET_KEY = key_file.read_text().strip()

ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h]
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = [PUBLIC_BASE_URL]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "channels",
    "django_tasks",
    "django_tasks_db",
    "inbox",
    "statuses",
    "channels_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.errors.BodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
# Under /api/ and /webhooks/ a CSRF refusal is JSON like every other error (config/errors.py).
CSRF_FAILURE_VIEW = "config.errors.csrf_failure"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

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
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    default_db = dj_database_url.parse(DATABASE_URL)
    if env_bool("DB_POOL", True):
        default_db["CONN_MAX_AGE"] = 0
        default_db["OPTIONS"] = {
            "pool": {
                "min_size": int(os.environ.get("DB_POOL_MIN", "2")),
                "max_size": int(os.environ.get("DB_POOL_MAX", "20")),
                "timeout": 10,
            }
        }
else:
    default_db = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SQLITE_PATH", str(BASE_DIR / "var" / "tickmark.sqlite3")),
        "OPTIONS": {
            # The server and the in-process worker write concurrently: take the write lock at
            # BEGIN and wait for it, instead of failing with "database is locked".
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
DATABASES = {"default": default_db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": os.environ.get("CHANNELS_PREFIX", "tm")},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        # Sends, status work and integrator webhooks each get their own queue so a flood of
        # one never starves the others (Chatwoot's shared low-priority queue, DESIGN §11).
        "QUEUES": ["default", "send", "webhooks"],
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "inbox.api.schema.AutoSchema",
    # API keys first: their WWW-Authenticate makes an unauthenticated call a 401, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "inbox.api.authentication.ApiKeyAuthentication",
        "inbox.api.authentication.MembershipSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["inbox.api.permissions.HasAccount"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "inbox.api.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "inbox.api.errors.exception_handler",
    # Failed API-key attempts per client IP (inbox.api.throttling).
    "DEFAULT_THROTTLE_RATES": {"auth_failure": os.environ.get("API_AUTH_FAILURE_RATE", "20/min")},
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Tickmark API",
    "DESCRIPTION": (
        "Send messages on every channel and read their true delivery status.\n\n"
        "Authenticate with `Authorization: Bearer <key>` (or `X-API-Key: <key>`). Errors are "
        '`{"error": {"code": "...", "message": "..."}}`. Statuses are UPPERCASE. Outgoing '
        "webhooks are signed: `X-Tickmark-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "
        '"<t>.<raw body>")>`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "FamilyEnum": "statuses.catalogue.Family",
        "ChannelTypeEnum": "statuses.catalogue.ChannelType",
        "MessageStatusEnum": "inbox.api.serializers.STATUS_VALUES",
        "ReportedStatusEnum": "inbox.api.serializers.REPORTABLE_STATUSES",
    },
}

# Webhook bodies up to this size are accepted (a bounce carries the original mail; Meta batches
# up to 1,000 statuses); larger → 413, recorded without the body. API bodies keep Django's
# DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB).
TICKMARK_WEBHOOK_MAX_BYTES = int(os.environ.get("TICKMARK_WEBHOOK_MAX_BYTES", 20 * 1024 * 1024))

# Provider HTTP calls.
PROVIDER_HTTP_TIMEOUT = float(os.environ.get("PROVIDER_HTTP_TIMEOUT", "10"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
    },
}

# Sending pipeline, worker and provider simulator (DESIGN §6, §10).
# Retries of transient send errors: exponential backoff from SEND_RETRY_BASE seconds, capped at
# SEND_RETRY_MAX_DELAY, at most SEND_MAX_TRIES tries (8 tries ≈ 1 hour with the defaults).
SEND_MAX_TRIES = int(os.environ.get("SEND_MAX_TRIES", "8"))
SEND_RETRY_BASE = float(os.environ.get("SEND_RETRY_BASE", "30"))
SEND_RETRY_MAX_DELAY = float(os.environ.get("SEND_RETRY_MAX_DELAY", "1200"))
# A send try still "in flight" after this many seconds belongs to a worker that died.
SEND_IN_FLIGHT_STALE_AFTER = float(os.environ.get("SEND_IN_FLIGHT_STALE_AFTER", "120"))
# A queued message with no pending send task after this many seconds is enqueued again.
SEND_REQUEUE_AFTER = float(os.environ.get("SEND_REQUEUE_AFTER", "60"))
# How often `manage.py worker` runs the sweeps (seconds; 0 disables them in that worker).
SWEEP_INTERVAL = float(os.environ.get("SWEEP_INTERVAL", "30"))
# The embedded provider simulator (`make run`); empty outside the embedded mode.
SIMULATOR_URL = os.environ.get("SIMULATOR_URL", "http://127.0.0.1:8025").rstrip("/")
