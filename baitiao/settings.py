"""Settings for Baitiao Ops, driven by the environment (django-environ).

Every variable is documented in ``.env.example``. A ``.env`` file next to
``manage.py`` is read when present; real environment variables win.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")


def _secret(name: str, dev_default: str) -> str:
    """A secret from ``NAME`` or the file named by ``NAME_FILE``; a dev default only with DEBUG."""
    file_path = env.str(f"{name}_FILE", default="")
    if file_path:
        return Path(file_path).read_text(encoding="utf-8").strip()
    value = env.str(name, default="")
    if value:
        return value
    if DEBUG:
        return dev_default
    raise ImproperlyConfigured(f"{name} must be set when DEBUG is off")


DEBUG = env.bool("DEBUG", default=False)
# Demo mode creates demo staff with printed passwords; never without DEBUG.
DEMO_MODE = DEBUG and env.bool("DEMO_MODE", default=True)

SECRET_KEY = _secret("SECRET_KEY", "dev-only-insecure-secret-key-change-me-0123456789abcdef")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# HTTPS (docs/deploy.md). Production sits behind a TLS-terminating load balancer:
# every default below is the safe production value, and DEBUG=true (local runs,
# http://127.0.0.1:8000) turns them off. SECURE_PROXY_SSL_HEADER is taken from the
# environment only ("HTTP_X_FORWARDED_PROTO,https"): trusting the header is right
# only when the proxy always sets it, or clients could claim HTTPS themselves.
_proxy_ssl_header = env.list("SECURE_PROXY_SSL_HEADER", default=[])
if _proxy_ssl_header:
    if len(_proxy_ssl_header) != 2:
        raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER is HEADER,VALUE, e.g. HTTP_X_FORWARDED_PROTO,https")
    SECURE_PROXY_SSL_HEADER = (_proxy_ssl_header[0], _proxy_ssl_header[1])
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Probes and the Prometheus scrape come over plain HTTP from inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
# Only the header's "preload" token; joining browsers' preload list is a separate, manual step.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)

# Personal data at rest: Fernet keys, newest first (MultiFernet decrypts with any,
# encrypts with the first), and a separate key for the keyed lookup hash.
PII_ENCRYPTION_KEYS = [
    key.strip()
    for key in _secret("PII_ENCRYPTION_KEYS", "ZGV2LW9ubHktcGlpLWtleS0wMDAwMDAwMDAwMDAwMDA=").split(",")
    if key.strip()
]
PII_HASH_KEY = _secret("PII_HASH_KEY", "dev-only-pii-hash-key")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "drf_standardized_errors",
    "django_q",
    "import_export",
    "pgtrigger",
    "axes",
    "csp",
    "django_htmx",
    "django_prometheus",
    "accounts",
    "repayments",
]

MIDDLEWARE = [
    # Request counts and latencies for Prometheus (django-prometheus): first and (almost) last.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # /healthz, /readyz and /metrics, answered before host validation, the HTTPS
    # redirect, sessions and login: probes and scrapes come by pod IP over plain HTTP.
    "baitiao.probes.OpsEndpointsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files from the web process itself (compressed, cached forever when hashed).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Request id and staff user id on every log line of the request (baitiao/logs.py).
    "baitiao.logs.RequestContextMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # A NUL or other control character in the path, query string or a form field is a
    # 400 here, before any view looks a value up in PostgreSQL (baitiao/edge.py).
    "baitiao.edge.RefuseControlCharactersMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.IdleTimeoutMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as django-axes asks: it turns a lockout into the lockout response.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses logins while locked out
    "accounts.backends.RoleModelBackend",  # ModelBackend with one permission query
]
# Login throttling (django-axes): 5 failures for one username from one address
# lock that pair out for 15 minutes; a success resets the count.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_IPWARE_PROXY_COUNT = env.int("PROXY_COUNT", default=0)

# Content-Security-Policy (django-csp): only our own scripts and styles; htmx
# is served from our static files, never a CDN.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    },
}

ROOT_URLCONF = "baitiao.urls"
WSGI_APPLICATION = "baitiao.wsgi.application"
ASGI_APPLICATION = "baitiao.asgi.application"

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

# PostgreSQL only. Without DATABASE_URL an embedded server starts under var/.
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db("DATABASE_URL")}
else:
    from baitiao.embedded_db import embedded_database_url

    DATABASES = {"default": env.db_url_config(embedded_database_url(VAR_DIR))}
# An optional read replica (streaming replication of the same cluster) for the
# dashboard and exports only; baitiao/db_routers.py decides which reads go there.
if env.str("DATABASE_REPLICA_URL", default=""):
    DATABASES["replica"] = env.db("DATABASE_REPLICA_URL")
    # Tests read the test database through it; nothing is created or migrated there.
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["baitiao.db_routers.ReplicaRouter"]
# The alias reporting reads use (baitiao.db_routers.reporting_db).
REPORTING_DATABASE = "replica" if "replica" in DATABASES else "default"
# Query counts and latencies per alias for Prometheus: django-prometheus's PostgreSQL
# backend is Django's own (a subclass) with counting cursors, so the PostgreSQL-only
# check runs on the URL's engine first. DB_METRICS=false keeps Django's backend.
DB_METRICS = env.bool("DB_METRICS", default=True)
for _alias, _db in DATABASES.items():
    if _db["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("Baitiao Ops runs on PostgreSQL only (DATABASE_URL=postgres://…)")
    if DB_METRICS:
        _db["ENGINE"] = "django_prometheus.db.backends.postgresql"
    # Persistent connections in production (gunicorn workers). Not under runserver:
    # it serves each request on a new thread, and kept connections pile up until
    # PostgreSQL refuses new clients (Django's docs warn about exactly this).
    _db.setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0 if DEBUG else 60))
    _db["CONN_HEALTH_CHECKS"] = True

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "console:home"
LOGOUT_REDIRECT_URL = "accounts:login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# One format for dates, moments and numbers in every language (baitiao/formats/).
FORMAT_MODULE_PATH = ["baitiao.formats"]
# The business time zone: due dates, DPD and schedules are counted here; the
# database stores UTC.
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=VAR_DIR / "staticfiles")
# WhiteNoise serves static files from the web process. In production, from
# STATIC_ROOT as `collectstatic` left them: hashed names, gzip/brotli copies, cached
# forever. With DEBUG on (runserver, tests) straight from the finders, unhashed,
# so nothing needs collectstatic first.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "baitiao.staticfiles.StaticFilesStorage"  # WhiteNoise's compressed manifest
    },
}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

SESSION_COOKIE_AGE = env.int("SESSION_IDLE_SECONDS", default=30 * 60)
# Idle timeout: a request extends the session, written at most once a minute
# (accounts.middleware.IdleTimeoutMiddleware) rather than on every request.
SESSION_REFRESH_SECONDS = 60
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"

REDIS_URL = env.str("REDIS_URL", default="")

# Stateless web processes (any worker on any machine serves any request): sessions
# live in the database, cached in Redis when there is one; the cache (API
# throttling, django-q2's cluster stats with the ORM broker) is Redis too then.
# Local memory otherwise, which is per process: fine for one machine in development.
# Login throttling (django-axes) uses its database handler, never the cache.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "baitiao",
            "TIMEOUT": 300,
        }
    }
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    SESSION_ENGINE = "django.contrib.sessions.backends.db"
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"

# Health and metrics (baitiao/probes.py, repayments/metrics.py, docs/deploy.md).
# /metrics answers DEBUG runs, requests with "Authorization: Bearer METRICS_TOKEN",
# and clients in METRICS_ALLOWED_NETWORKS (CIDRs, matched on the TCP peer address).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="") or (
    Path(env.str("METRICS_TOKEN_FILE")).read_text(encoding="utf-8").strip()
    if env.str("METRICS_TOKEN_FILE", default="")
    else ""
)
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.1/32", "::1/128"])
# Debit outcomes on /metrics count attempts requested in this trailing window (hours).
METRICS_WINDOW_HOURS = env.int("METRICS_WINDOW_HOURS", default=24)
# Prometheus collectors the /metrics view adds to the process metrics (dotted paths; read at scrape time).
METRICS_COLLECTORS = ["repayments.metrics.DomainCollector"]
# /readyz: the queue is stale when a ready task has waited, or a schedule has been
# overdue, longer than this (seconds); the gateway must answer within the timeout.
READINESS_QUEUE_MAX_AGE_SECONDS = env.int("READINESS_QUEUE_MAX_AGE_SECONDS", default=600)
READINESS_GATEWAY_TIMEOUT_SECONDS = env.float("READINESS_GATEWAY_TIMEOUT_SECONDS", default=2.0)
GATEWAY_HEALTH_PATH = env.str("GATEWAY_HEALTH_PATH", default="/healthz")

# django-q2: the ORM broker on PostgreSQL by default; Redis when REDIS_URL is set
# so that clusters on several machines share one queue. `retry` must exceed
# `timeout`, or a slow task is handed to a second worker while the first runs.
# Delivery (docs/resilience.md, tests/ops/test_multi_cluster.py): on Redis a task is
# popped atomically (BLPOP) by one cluster and never redelivered (`retry`,
# `max_attempts` and `ack_failures` apply to the ORM broker only); on the ORM broker
# a claimed task comes back after `retry` s unless acknowledged, and a failed one
# (`ack_failures` off) is retried until `max_attempts`. Either way every task is
# idempotent. A cluster holds at most `queue_limit` tasks taken from the shared
# queue: kept small, so that tasks wait where any machine can take them, a killed
# cluster loses few (Redis), and none waits locally past `retry` and runs twice (ORM).
#
# Lanes (docs/operations.md, "Lanes"): three clusters, each consuming its own queue,
# so time-critical work never waits behind bulk work (issue #16):
# * critical: incident detection, relief runs, agents' manual retries (and their
#   debits), the dashboard refresh. Small, frequent, someone is waiting for them.
# * baitiao (main, "bulk"): collection runs and their debits, settling unknown
#   attempts, ageing, reminder planning, imports, housekeeping.
# * notify: customer messages (debit results, reminders, apologies), by the thousand.
# Each lane's size is its own env var; /readyz and /metrics show each lane's backlog.
_Q_WORKERS = env.int("Q_WORKERS", default=2)
_Q_CRITICAL_WORKERS = env.int("Q_CRITICAL_WORKERS", default=2)
_Q_NOTIFY_WORKERS = env.int("Q_NOTIFY_WORKERS", default=1)
Q_CLUSTER = {
    "name": "baitiao",
    "workers": _Q_WORKERS,
    "timeout": 300,
    "retry": 360,
    "max_attempts": 3,
    "queue_limit": 2 * _Q_WORKERS,
    "bulk": 1,
    "catch_up": False,
    "label": "Task queue",
    "ALT_CLUSTERS": {
        "critical": {"workers": _Q_CRITICAL_WORKERS, "queue_limit": 2 * _Q_CRITICAL_WORKERS},
        "notify": {"workers": _Q_NOTIFY_WORKERS, "queue_limit": 2 * _Q_NOTIFY_WORKERS},
    },
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# REST API (/api/v1/, docs/api.md). Knox tokens (stored hashed, with an expiry) for
# other systems, the console session for staff in a browser; the console's role
# permissions; errors in one machine-readable shape (drf-standardized-errors).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",  # first, so a missing credential is a 401 with WWW-Authenticate
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # The shared FilterSets (repayments/filters.py), a blank or invalid value a 400 (docs/api.md).
    "DEFAULT_FILTER_BACKENDS": ["repayments.api.filtering.StrictFilterBackend"],
    # JSON only, as the schema says: a form or multipart body is a 415, not a "null" string.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "repayments.api.pagination.IdCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_THROTTLE_ANON", default="60/minute"),
        "user": env.str("API_THROTTLE_USER", default="1200/minute"),
    },
    "DEFAULT_SCHEMA_CLASS": "repayments.api.schema.ApiAutoSchema",
    "EXCEPTION_HANDLER": "drf_standardized_errors.handler.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,  # amounts travel as strings: "1234.50", never a float
    "DATETIME_FORMAT": "iso-8601",  # with the offset: 2026-11-30T09:00:00+08:00
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
DRF_STANDARDIZED_ERRORS = {
    "EXCEPTION_HANDLER_CLASS": "repayments.api.errors.ApiExceptionHandler",
    "ALLOWED_ERROR_STATUS_CODES": ["400", "401", "403", "404", "405", "406", "409", "415", "422", "429", "500"],
    # Our codes go beyond DRF's fixed ones (unknown_field, rule_violation, bad_signature…),
    # so these responses are documented with the general shape.
    "ERROR_SCHEMAS": {
        status: "repayments.api.errors.ErrorResponseSerializer" for status in ("400", "403", "409", "422")
    },
}
REST_KNOX = {
    "TOKEN_TTL": dt.timedelta(days=env.int("API_TOKEN_TTL_DAYS", default=90)),
    "AUTO_REFRESH": False,
    "TOKEN_LIMIT_PER_USER": 5,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Baitiao Ops API",
    "DESCRIPTION": "Repayment operations: customers (masked), credit lines, bills, repayment attempts, "
    "extensions and waivers, binding repairs, reminders, incidents and the gateway callback. "
    "Amounts are decimal strings in the bill's currency; times are ISO 8601 with an offset. "
    "Every POST that moves money or grants relief needs an Idempotency-Key header.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and the docs page need a signed-in staff user (session or token), with
    # DEBUG on or off: drf-spectacular's default lets anyone read them (docs/api.md).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",  # self-hosted: no CDN on the internal network
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ValidationErrorEnum": "drf_standardized_errors.openapi_serializers.ValidationErrorEnum.choices",
        "ClientErrorEnum": "drf_standardized_errors.openapi_serializers.ClientErrorEnum.choices",
        "ServerErrorEnum": "drf_standardized_errors.openapi_serializers.ServerErrorEnum.choices",
        "BillStatusEnum": "repayments.models.BillStatus",
        "AttemptStatusEnum": "repayments.models.AttemptStatus",
        "FailureFamilyEnum": "repayments.models.FailureFamily",
        "ApprovalStatusEnum": "repayments.models.ApprovalStatus",
        "CreditLineStatusEnum": "repayments.models.CreditLineStatus",
        "CardBindingStatusEnum": "repayments.models.CardBindingStatus",
        "RepairCaseStatusEnum": "repayments.models.RepairCaseStatus",
        "IncidentStatusEnum": "repayments.models.IncidentStatus",
        "ReliefStatusEnum": "repayments.models.ReliefStatus",
        "ReminderStatusEnum": "repayments.models.Reminder.Status",
    },
    "POSTPROCESSING_HOOKS": ["drf_standardized_errors.openapi_hooks.postprocess_schema_enums"],
}
# Idempotency-Key records are kept this long (hours); a retry after that runs anew.
API_IDEMPOTENCY_TTL_HOURS = env.int("API_IDEMPOTENCY_TTL_HOURS", default=48)

# Delinquency buckets by DPD (inclusive upper bounds; the last is open-ended).
DELINQUENCY_BUCKETS = [
    ("M0", 0),
    ("M1", 30),
    ("M2", 60),
    ("M3", 90),
    ("M4+", None),
]
# Days after the due date before an unpaid bill counts as overdue.
GRACE_PERIOD_DAYS = env.int("GRACE_PERIOD_DAYS", default=3)
# Late fee per day past due, as a fraction of the unpaid amount due, and its cap
# as a percentage of the amount due (repayments/services/delinquency.py).
LATE_FEE_DAILY_RATE = Decimal(env.str("LATE_FEE_DAILY_RATE", default="0.0005"))
LATE_FEE_CAP_PERCENT = Decimal(env.str("LATE_FEE_CAP_PERCENT", default="10"))

# The sandbox bank is the gateway (demo mode): its UnionPay test cards, one of which fails
# the Luhn check, are accepted by card validation. Never on in production.
GATEWAY_SANDBOX = env.bool("GATEWAY_SANDBOX", default=DEMO_MODE)
# Bank/payment gateway (repayments/gateway). The sandbox bank listens on GATEWAY_URL
# in development and tests; callbacks come back to GATEWAY_CALLBACK_URL.
GATEWAY_URL = env.str("GATEWAY_URL", default="http://127.0.0.1:8099")
GATEWAY_SECRET = _secret("GATEWAY_SECRET", "dev-only-gateway-secret")
GATEWAY_TIMEOUT_SECONDS = env.int("GATEWAY_TIMEOUT_MS", default=5000) / 1000
GATEWAY_CALLBACK_URL = env.str("GATEWAY_CALLBACK_URL", default="http://127.0.0.1:8000/api/v1/gateway/callbacks/")
GATEWAY_SIGNATURE_TOLERANCE_SECONDS = 300

# Collection (repayments/services/collection.py): first debits of a bill start at
# this business-time hour on its due date; retry schedules per failure family.
COLLECTION_START_HOUR = env.int("COLLECTION_START_HOUR", default=9)
# The sandbox bank's everyday system errors (share of debits, 0-1; `make run` sets 0.03,
# tests start it without): docs/repayment-engine.md, "The sandbox bank".
SANDBOX_SYSTEM_FAILURE_RATE = env.float("SANDBOX_SYSTEM_FAILURE_RATE", default=0.0)
# The first run's demo collection (repayments/services/first_run.py): how many due
# customers it debits at once, before the first scheduled run takes the rest.
FIRST_RUN_SAMPLE = env.int("FIRST_RUN_SAMPLE", default=400)
RETRY_POLICY: dict[str, dict[str, Any]] = {
    # family: how the next try is scheduled (docs/repayment-engine.md)
    "system": {"first_minutes": 5, "factor": 2, "cap_minutes": 120, "max_tries": 8},
    "funds": {"days": [1, 3, 5]},
    "other": {"days": [1]},
    "binding": {},  # never retried on the same card; a new binding retries at once
}
# A processing/unknown attempt older than this is resolved by querying the gateway.
ATTEMPT_RESOLVE_AFTER_SECONDS = env.int("ATTEMPT_RESOLVE_AFTER_SECONDS", default=120)

# Reminders (repayments/services/reminders.py): days relative to the due date per
# risk tier, the send window in business time, and the per-customer daily cap.
REMINDER_CADENCE = {
    "high": [-7, -3, -1, 0, 1, 3],
    "medium": [-3, -1, 0, 2],
    "low": [-1, 1],
}
REMINDER_SEND_TIME = "10:00"
REMINDER_QUIET_HOURS = ("21:00", "08:00")  # no reminders from 21:00 to 08:00 business time
REMINDER_DAILY_CAP = env.int("REMINDER_DAILY_CAP", default=2)
REMINDER_CHANNELS = ["push", "sms", "email"]  # fallback order

# Extensions and waivers (repayments/services/extensions.py, docs/console.md).
# An agent's own authority; anything beyond it waits for a supervisor who is not
# the requester (maker-checker).
EXTENSION_POLICY = {
    "agent_max_days": env.int("EXTENSION_AGENT_MAX_DAYS", default=7),  # calendar days per extension
    "agent_max_per_bill": 1,  # extensions of one bill an agent may grant
    "agent_max_per_customer": 2,  # per customer in the trailing window below
    "window_days": 365,  # the trailing window: 12 months
    "max_days": 90,  # nobody asks for more days (database check), nor moves a due date further (the shift)
    # An agent alone moves a due date at most this far (days asked + days already late,
    # repayments.services.extensions.extension_shift): an older delinquency needs a supervisor.
    "agent_max_shift_days": env.int("EXTENSION_AGENT_MAX_SHIFT_DAYS", default=30),
}
# In the bill's currency (CNY for most lines), summed per bill over the waivers agents grant.
WAIVER_AGENT_LIMIT = Decimal(env.str("WAIVER_AGENT_LIMIT", default="100.00"))

# System-fault incidents (repayments/services/incidents.py, docs/incidents.md).
# An incident opens when, for one bank, at least ``threshold_percent`` of at least
# ``min_attempts`` debits settled in the last ``window_minutes`` failed with a
# system-family code. Relief re-debits ``redebit_after_minutes`` after recovery and
# works through ``chunk`` bills per transaction.
INCIDENT_DETECTION = {
    "threshold_percent": Decimal(env.str("INCIDENT_THRESHOLD_PERCENT", default="20")),
    "min_attempts": env.int("INCIDENT_MIN_ATTEMPTS", default=50),
    "window_minutes": env.int("INCIDENT_WINDOW_MINUTES", default=5),
}
INCIDENT_RELIEF = {
    "max_days": 90,  # like extensions (database check)
    "redebit_after_minutes": 30,
    "chunk": 2000,
}

# Retention (PIPL; repayments/services/retention.py, docs/operations.md): a customer whose
# credit line closed more than CUSTOMER_RETENTION_YEARS calendar years ago (and who owes
# nothing) is anonymized by a daily job. CUSTOMER_RETENTION_DAYS, when set (> 0), counts
# days instead (for a regulator's different rule, or a test).
CUSTOMER_RETENTION_YEARS = env.int("CUSTOMER_RETENTION_YEARS", default=5)
CUSTOMER_RETENTION_DAYS = env.int("CUSTOMER_RETENTION_DAYS", default=0)
CUSTOMER_RETENTION_CHUNK = env.int("CUSTOMER_RETENTION_CHUNK", default=1000)

# Customer email: files under var/mail in development, SMTP in production.
if DEBUG:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = VAR_DIR / "mail"
else:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
    EMAIL_PORT = env.int("EMAIL_PORT", default=25)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Baitiao <noreply@example.com>")
# SMS and push providers: the sandbox records messages; a real provider plugs in here.
SMS_PROVIDER = env.str("SMS_PROVIDER", default="repayments.notifications.providers.SandboxSmsProvider")
PUSH_PROVIDER = env.str("PUSH_PROVIDER", default="repayments.notifications.providers.SandboxPushProvider")

# Logs (baitiao/logs.py, docs/operations.md): every line, ours and the libraries',
# through structlog's ProcessorFormatter: JSON lines on standard error in production,
# readable lines with DEBUG on; LOG_FORMAT=json|console overrides. Standard error, in
# every process (web, clusters, commands): standard output carries only what a command
# was asked for, so `TOKEN=$(manage.py api_token …)` captures the token and nothing else.
# Personal data is never logged; a redaction processor masks phones, IDs and card
# numbers anyway.
LOG_FORMAT = env.str("LOG_FORMAT", default="console" if DEBUG else "json")
if LOG_FORMAT not in ("json", "console"):
    raise ImproperlyConfigured("LOG_FORMAT must be json or console")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"structured": {"()": "baitiao.logs.make_formatter", "log_format": LOG_FORMAT}},
    "filters": {"drop_query_strings": {"()": "baitiao.logs.DropQueryStrings"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "structured",
            "filters": ["drop_query_strings"],
        }
    },
    "root": {"handlers": ["stderr"], "level": LOG_LEVEL},
    "loggers": {
        # Handlers of their own would bypass ours: Django's default ones, and the one
        # django-q2 adds to "django-q" when it finds none.
        "django": {"handlers": ["stderr"], "level": LOG_LEVEL, "propagate": False},
        # runserver's access lines: our middleware writes one per request with its id.
        "django.server": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        "django-q": {"handlers": ["stderr"], "level": LOG_LEVEL, "propagate": False},
        # gunicorn's worker-side lines (its access line has no query string: gunicorn.conf.py).
        "gunicorn.error": {"handlers": ["stderr"], "level": LOG_LEVEL, "propagate": False},
        "gunicorn.access": {"handlers": ["stderr"], "level": LOG_LEVEL, "propagate": False},
        "pgserver": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
from baitiao.logs import configure_structlog  # noqa: E402 - after LOGGING, which it complements

configure_structlog()

# Analyst imports (docs/csv.md "Limits" and "Stuck jobs"). Every limit is checked before a
# file is parsed, and the refusal names the limit and the file's value.
IMPORT_LIMITS = {
    # bytes of an upload (console, admin, command line); a CSV of 1,000,000 bills rows is ~110 MB
    "max_bytes": env.int("IMPORT_MAX_BYTES", default=200 * 1024 * 1024),
    # bytes of an XLSX once unzipped (its sheets' XML): a zip bomb is refused before openpyxl opens it
    "xlsx_max_unzipped_bytes": env.int("IMPORT_XLSX_MAX_UNZIPPED_BYTES", default=400 * 1024 * 1024),
    # spreadsheet rows and columns (a sheet's declared dimension, or what a CSV really holds)
    "max_rows": env.int("IMPORT_MAX_ROWS", default=1_100_000),
    "max_columns": env.int("IMPORT_MAX_COLUMNS", default=40),
    # rows × columns of an XLSX's declared dimension (cells openpyxl would visit)
    "max_cells": env.int("IMPORT_MAX_CELLS", default=12_000_000),
    # console uploads up to this many bytes (an XLSX: unzipped) run in the web request;
    # larger ones on the queue, so the web process never parses more than this
    "inline_max_bytes": env.int("IMPORT_INLINE_MAX_BYTES", default=1_000_000),
}
# Queued import jobs (repayments/services/imports.py): the worker beats every
# ``heartbeat_seconds``; the ``sweep-import-jobs`` schedule (every minute) takes a running
# job whose last beat is older than ``stale_seconds`` (a killed worker, the 300 s queue
# timeout) and queues it again up to ``max_attempts`` runs in all, then fails it. A job
# still queued after ``abandon_queued_hours`` is failed. Uploads of finished jobs are cleared.
# Analyst exports (repayments/services/exports.py): up to ``sync_max_rows`` rows stream at
# once; a larger one runs on the queue and its encrypted file is kept ``keep_hours``
# or until it is downloaded.
EXPORTS = {
    "sync_max_rows": env.int("EXPORT_SYNC_MAX_ROWS", default=10_000),
    "keep_hours": env.int("EXPORT_KEEP_HOURS", default=24),
    "progress_rows": env.int("EXPORT_PROGRESS_ROWS", default=2_000),
    # A running export whose progress has not moved for this long lost its worker (sweep-export-jobs).
    "stale_seconds": env.int("EXPORT_STALE_SECONDS", default=600),
}
IMPORT_JOBS = {
    "heartbeat_seconds": env.int("IMPORT_JOB_HEARTBEAT_SECONDS", default=10),
    "stale_seconds": env.int("IMPORT_JOB_STALE_SECONDS", default=60),
    "max_attempts": env.int("IMPORT_JOB_MAX_ATTEMPTS", default=2),
    "abandon_queued_hours": env.int("IMPORT_JOB_ABANDON_QUEUED_HOURS", default=24),
    # A clean preview keeps its (encrypted) upload this long, so "Apply" needs no second upload.
    "keep_preview_hours": env.int("IMPORT_KEEP_PREVIEW_HOURS", default=2),
}
