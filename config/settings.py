"""Tickmark settings, read from the environment (DESIGN §10).

Embedded default: SQLite, in-memory channel layer, in-process worker.
Production: DATABASE_URL (PostgreSQL), REDIS_URL, PUBLIC_BASE_URL, SECRET_KEY, ALLOWED_HOSTS.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

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
if "*" in ALLOWED_HOSTS and not DEBUG and not env_bool("TICKMARK_ALLOW_ANY_HOST", False):
    # Any Host header would be believed: password-reset links, absolute URLs, WebSocket origins.
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS='*' with DEBUG=0: list the host names Tickmark is served under "
        "(or set TICKMARK_ALLOW_ANY_HOST=1 if a proxy in front already checks the Host)."
    )

# Production over HTTPS (issue #10 item 9; `check --deploy` clean): when PUBLIC_BASE_URL is
# https and DEBUG is off, cookies are Secure, plain HTTP is redirected and HSTS is sent.
# Behind a TLS-terminating proxy set TICKMARK_BEHIND_TLS_PROXY=1, so the proxy's
# X-Forwarded-Proto tells Django the request was HTTPS (only set it if the proxy overwrites that
# header: otherwise a client could claim HTTPS).
if env_bool("TICKMARK_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
HTTPS = PUBLIC_BASE_URL.startswith("https://") and not DEBUG
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and env_bool("SECURE_SSL_REDIRECT", True)
# Health probes from a local load balancer may come over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000")) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
# Preload is opt-in: once browsers ship a domain in their preload list it is hard to undo, so
# `check --deploy`'s reminder about it (W021) is silenced unless the operator opts in.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

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
    "drf_spectacular_sidecar",  # Swagger UI assets served locally (works offline)
    "channels",
    "django_tasks",
    "django_tasks_db",
    "inbox",
    "statuses",
    "channels_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.static.StaticFilesMiddleware",
    "config.security.ContentSecurityPolicyMiddleware",
    "config.errors.BodyLimitMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Polling a message and sending one, answered here when they are the common case: what is
    # above shapes their response as every other's (inbox/api/hot.py).
    "inbox.api.hot.HotApiMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "config.health.DatabaseUnavailableMiddleware",
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
# Django's backend + config.dbpool's pool check and the hot statements' plans (config.postgres).
POSTGRES_ENGINE = "config.postgres"
if DATABASE_URL:
    default_db = dj_database_url.parse(DATABASE_URL)
    postgres = default_db["ENGINE"] == "django.db.backends.postgresql"
    if postgres:
        default_db["ENGINE"] = POSTGRES_ENGINE
    if env_bool("DB_POOL", True) and postgres:
        default_db["CONN_MAX_AGE"] = 0
        # After a database restart every pooled connection is dead: each is checked as it is
        # handed out (config.dbpool, installed by the config.postgres backend: a poll of its
        # socket, a round trip only when the server has said something), so a request never
        # gets a broken one. Django's own CONN_HEALTH_CHECKS would send a query per checkout.
        default_db["CONN_HEALTH_CHECKS"] = False
        default_db["OPTIONS"] = {
            "pool": {
                "min_size": int(os.environ.get("DB_POOL_MIN", "2")),
                "max_size": int(os.environ.get("DB_POOL_MAX", "20")),
                "timeout": float(os.environ.get("DB_POOL_TIMEOUT", "10")),
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
# Threads a web process runs Django requests on (config/handler.py): a request waiting for
# PostgreSQL no longer holds up the others. Each holds at most one pooled connection during a
# request, so keep it well under DB_POOL_MAX. SQLite always uses one.
REQUEST_THREADS = int(os.environ.get("REQUEST_THREADS", "4"))
# How long a thread of a web process may hold the GIL while another waits for it (Python's
# sys.setswitchinterval, 5 ms by default). The webhook lanes, the request threads and the
# broadcast thread each wake from a database or Redis answer and then wait for the GIL: behind
# a busy thread, up to 5 ms per wake-up at Python's default, several times per webhook. Two
# full benchmark runs, 5 ms then 0.5 ms: the tick p99 at half load went from 69.9 ms (at
# 190/s) to 40.9 ms (at 229/s), nothing else lost (bench/README.md, fourth round).
SWITCH_INTERVAL_MS = float(os.environ.get("TICKMARK_SWITCH_INTERVAL_MS", "0.5"))
# The hot paths' fixed statements (inbox.rowsql.hot_cursor) are prepared once per connection:
# the server parses and plans them once instead of on every call (the connection runs their
# generic plan: config.postgres). Turn off behind a connection pooler that cannot keep prepared
# statements (PgBouncer before 1.21, or with max_prepared_statements = 0).
TICKMARK_PREPARED_STATEMENTS = env_bool("TICKMARK_PREPARED_STATEMENTS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_app.layers.RedisChannelLayer",  # channels-redis, fewer round trips
            "CONFIG": {
                # channels-redis waits on Redis with a 5 s blocking pop; redis-py's socket
                # timeout must be longer, or an idle socket dies with TimeoutError (close 1011).
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": float(os.environ.get("REDIS_SOCKET_TIMEOUT", "30")),
                        "socket_connect_timeout": 5,
                        "socket_keepalive": True,
                    }
                ],
                "prefix": os.environ.get("CHANNELS_PREFIX", "tm"),
                # Messages waiting for one web process's sockets (channels-redis keeps them all
                # in one key per process); past it a message is dropped (docs/scaling.md).
                "capacity": int(os.environ.get("CHANNELS_CAPACITY", "100")),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Cache and rate limits (h10c, issue #10 items 6-7) -------------------------------------
# Rate-limit counters (API-key failures, login, widget, rejected webhooks) live in the default
# cache, so every web process sees the same counts: Redis when REDIS_URL is set (CACHE_URL
# overrides it, e.g. to use another Redis database), local memory otherwise (embedded mode is a
# single process). Short socket timeouts: the limiters fail open when the cache is down.
CACHE_URL = os.environ.get("CACHE_URL", "") or REDIS_URL
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "tm-cache"),
            "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 1.0},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Rate limits (inbox.ratelimit; rates like "10/min", "5/15min", "100/hour"; "off" disables one).
# How many reverse proxies of ours append to X-Forwarded-For; 0: the header is ignored.
TICKMARK_TRUSTED_PROXIES = int(os.environ.get("TICKMARK_TRUSTED_PROXIES", "0"))
# Sign-in failures per username (whether it exists or not) and per client address.
TICKMARK_LOGIN_USERNAME_RATE = os.environ.get("TICKMARK_LOGIN_USERNAME_RATE", "5/15min")
TICKMARK_LOGIN_ADDRESS_RATE = os.environ.get("TICKMARK_LOGIN_ADDRESS_RATE", "20/15min")
# Public web widget: chats started per address and per inbox, messages per contact and per
# address, socket connections per address and socket frames per contact.
TICKMARK_WIDGET_START_RATE = os.environ.get("TICKMARK_WIDGET_START_RATE", "10/min")
TICKMARK_WIDGET_START_INBOX_RATE = os.environ.get("TICKMARK_WIDGET_START_INBOX_RATE", "60/min")
TICKMARK_WIDGET_MESSAGE_RATE = os.environ.get("TICKMARK_WIDGET_MESSAGE_RATE", "30/min")
TICKMARK_WIDGET_MESSAGE_ADDRESS_RATE = os.environ.get(
    "TICKMARK_WIDGET_MESSAGE_ADDRESS_RATE", "120/min"
)
TICKMARK_WIDGET_SOCKET_RATE = os.environ.get("TICKMARK_WIDGET_SOCKET_RATE", "30/min")
TICKMARK_WIDGET_FRAME_RATE = os.environ.get("TICKMARK_WIDGET_FRAME_RATE", "120/min")
# Widget contacts that never wrote (and were never written to) are deleted after this long.
TICKMARK_WIDGET_IDLE_CONTACT_HOURS = float(
    os.environ.get("TICKMARK_WIDGET_IDLE_CONTACT_HOURS", "24")
)
# --- end cache and rate limits -------------------------------------------------------------

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
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "var" / "staticfiles"))
# Served by the app itself with DEBUG=0 (WhiteNoise, config.static): hashed and compressed after
# `manage.py collectstatic`, plain names from the app directories before it.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "config.static.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

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
    # X-Forwarded-For is the client's word unless our own proxies wrote it.
    "NUM_PROXIES": TICKMARK_TRUSTED_PROXIES,
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
    # Swagger UI from drf-spectacular-sidecar's pinned copy, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No call to validator.swagger.io: the docs page makes no request off this server.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "FamilyEnum": "statuses.catalogue.Family",
        "ChannelTypeEnum": "statuses.catalogue.ChannelType",
        "MessageStatusEnum": "inbox.api.serializers.STATUS_VALUES",
        "ReportedStatusEnum": "inbox.api.serializers.REPORTABLE_STATUSES",
        "ConsentSourceEnum": "inbox.models.ConsentSource",
    },
}

# A do-nothing view at /bench/noop, the ceiling the benchmarks compare with (bench/run.py).
TICKMARK_BENCH_NOOP = env_bool("TICKMARK_BENCH_NOOP", False)

# Webhook lanes of one web process (statuses.views._Lanes): threads with a connection each,
# passing one baton. A lane takes what waits and applies it, and lets the next one start just
# before its COMMIT, so commits and answers overlap the next batch while batches stay as big
# as with one lane (eighth round: +8 % single-status webhooks against the seventh round's
# asyncio lanes, bench/README.md). A batch of at least TICKMARK_WEBHOOK_LANE_BYTES of body
# lets the next lane start at once, and while that much waits a free lane takes it beside the
# baton's holder (100-status webhooks: two lanes measured 8,020 against 5,810 statuses/s).
# SQLite: 1 (one lane, in Django's sync thread).
TICKMARK_WEBHOOK_LANES = int(
    os.environ.get("TICKMARK_WEBHOOK_LANES", "1" if "sqlite" in default_db["ENGINE"] else "2")
)
# 0: every batch lets the next lane start at once (with PostgreSQL across a network, where
# light batches wait on round trips of milliseconds and more lanes overlap them;
# docs/deploy.md).
TICKMARK_WEBHOOK_LANE_BYTES = int(os.environ.get("TICKMARK_WEBHOOK_LANE_BYTES", 64 * 1024))

# Webhook bodies up to this size are accepted (a bounce carries the original mail; Meta batches
# up to 1,000 statuses); larger → 413, recorded without the body. API bodies keep Django's
# DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB).
TICKMARK_WEBHOOK_MAX_BYTES = int(os.environ.get("TICKMARK_WEBHOOK_MAX_BYTES", 20 * 1024 * 1024))

# A campaign's create request (100,000 recipients with their parameters, JSON or CSV).
TICKMARK_CAMPAIGN_MAX_BYTES = int(os.environ.get("TICKMARK_CAMPAIGN_MAX_BYTES", 32 * 1024 * 1024))

# Provider HTTP calls.
PROVIDER_HTTP_TIMEOUT = float(os.environ.get("PROVIDER_HTTP_TIMEOUT", "10"))
# Outgoing connections to tenant-given URLs/hosts go to public addresses only (statuses.netguard);
# on only for a local simulator or fakes (`make run`, the tests).
TICKMARK_ALLOW_PRIVATE_URLS = env_bool("TICKMARK_ALLOW_PRIVATE_URLS", False)

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
# Read receipts to providers (statuses.read_receipts): retried like sends, given up sooner.
READ_RECEIPT_MAX_TRIES = int(os.environ.get("READ_RECEIPT_MAX_TRIES", "5"))
READ_RECEIPT_RETRY_BASE = float(os.environ.get("READ_RECEIPT_RETRY_BASE", "30"))
READ_RECEIPT_RETRY_MAX_DELAY = float(os.environ.get("READ_RECEIPT_RETRY_MAX_DELAY", "1200"))
# A send try still "in flight" after this many seconds belongs to a worker that died.
SEND_IN_FLIGHT_STALE_AFTER = float(os.environ.get("SEND_IN_FLIGHT_STALE_AFTER", "120"))
# A queued message with no pending send task after this many seconds is enqueued again.
SEND_REQUEUE_AFTER = float(os.environ.get("SEND_REQUEUE_AFTER", "60"))
# A campaign whose worker committed no batch for this many seconds lost it: enqueued again.
CAMPAIGN_STALLED_AFTER = float(os.environ.get("CAMPAIGN_STALLED_AFTER", "30"))
# Provider webhook records (statuses.sweeps.deliveries_prune): accepted calls are kept this many
# days, rejected ones (bad signature; their body is never stored) this many.
TICKMARK_KEEP_ACCEPTED_DAYS = float(os.environ.get("TICKMARK_KEEP_ACCEPTED_DAYS", "14"))
TICKMARK_KEEP_REJECTED_DAYS = float(os.environ.get("TICKMARK_KEEP_REJECTED_DAYS", "2"))
# Rejected webhook calls per inbox and source address per minute before answering 429.
TICKMARK_REJECTED_WEBHOOKS_PER_MINUTE = int(
    os.environ.get("TICKMARK_REJECTED_WEBHOOKS_PER_MINUTE", "30")
)
# Seconds between two syncs of a WhatsApp inbox's templates by the worker's sweep (0: never).
TICKMARK_TEMPLATE_SYNC_INTERVAL = float(os.environ.get("TICKMARK_TEMPLATE_SYNC_INTERVAL", "21600"))
# How often `manage.py worker` runs the sweeps (seconds; 0 disables them in that worker).
SWEEP_INTERVAL = float(os.environ.get("SWEEP_INTERVAL", "30"))
# The embedded provider simulator (`make run`); empty outside the embedded mode.
SIMULATOR_URL = os.environ.get("SIMULATOR_URL", "http://127.0.0.1:8025").rstrip("/")
# Worker resilience (statuses.lanes): a database error makes a lane wait (0.5 s, 1 s, 2 s … at
# most WORKER_DB_RETRY_MAX seconds) and try again — it never exits. Each lane records a heartbeat
# every WORKER_HEARTBEAT_EVERY seconds; /healthz/worker answers 503 once the newest heartbeat of
# a lane is older than WORKER_HEARTBEAT_STALE_AFTER.
WORKER_DB_RETRY_MAX = float(os.environ.get("WORKER_DB_RETRY_MAX", "10"))
# Threads of the worker's send lane, each with its own database connection (a send mostly waits
# on database round trips): 0 means 4 on PostgreSQL, 1 on SQLite (one writer at a time anyway).
# `manage.py worker --send-threads N` overrides it.
WORKER_SEND_THREADS = int(os.environ.get("WORKER_SEND_THREADS", "0"))
WORKER_HEARTBEAT_EVERY = float(os.environ.get("WORKER_HEARTBEAT_EVERY", "5"))
WORKER_HEARTBEAT_STALE_AFTER = float(os.environ.get("WORKER_HEARTBEAT_STALE_AFTER", "60"))
# Outgoing integrator webhooks (statuses.webhooks_out): each POST gets WEBHOOK_CONNECT_TIMEOUT
# seconds to connect and WEBHOOK_TIMEOUT seconds in all; a delivery round posts up to
# WEBHOOK_CONCURRENCY at once, at most WEBHOOK_MAX_CONCURRENT_PER_SUBSCRIPTION per subscription;
# an account may have at most WEBHOOK_MAX_SUBSCRIPTIONS_PER_ACCOUNT subscriptions.
WEBHOOK_CONNECT_TIMEOUT = float(os.environ.get("WEBHOOK_CONNECT_TIMEOUT", "5"))
WEBHOOK_TIMEOUT = float(os.environ.get("WEBHOOK_TIMEOUT", "10"))
WEBHOOK_CONCURRENCY = int(os.environ.get("WEBHOOK_CONCURRENCY", "8"))
WEBHOOK_MAX_CONCURRENT_PER_SUBSCRIPTION = int(
    os.environ.get("WEBHOOK_MAX_CONCURRENT_PER_SUBSCRIPTION", "2")
)
WEBHOOK_MAX_SUBSCRIPTIONS_PER_ACCOUNT = int(
    os.environ.get("WEBHOOK_MAX_SUBSCRIPTIONS_PER_ACCOUNT", "20")
)
WEBHOOK_MAX_CONCURRENT_PER_ACCOUNT = int(os.environ.get("WEBHOOK_MAX_CONCURRENT_PER_ACCOUNT", "4"))
# Fair sends: a new message's send task is ranked below the account's other messages queued in
# the last SEND_FAIRNESS_WINDOW seconds, so one account's burst never starves another's message.
SEND_FAIRNESS_WINDOW = float(os.environ.get("SEND_FAIRNESS_WINDOW", "3600"))
# API keys (with their account) and inboxes are kept this many seconds per process, so a request
# does not look them up again (inbox/caches.py): a key revoked elsewhere stops working within it.
ROW_CACHE_SECONDS = float(os.environ.get("ROW_CACHE_SECONDS", "10"))
# Send rate per inbox (statuses.sendrate, DESIGN §16): a send whose turn is at most
# SEND_RATE_MAX_WAIT seconds away waits for it in the worker thread; a later turn puts it back in
# the queue. SEND_RATE_BURST seconds' worth of sends may go at once. After a provider's 429 the
# rate is halved and climbs back to the full rate over SEND_RATE_RECOVERY seconds.
SEND_RATE_MAX_WAIT = float(os.environ.get("SEND_RATE_MAX_WAIT", "0.25"))
SEND_RATE_BURST = float(os.environ.get("SEND_RATE_BURST", "0.1"))
SEND_RATE_RECOVERY = float(os.environ.get("SEND_RATE_RECOVERY", "60"))
