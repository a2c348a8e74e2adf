"""Settings for Baitiao Ops, driven by the environment (django-environ).

Every variable is documented in ``.env.example``. A ``.env`` file next to
``manage.py`` is read when present; real environment variables win.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

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
    "django_q",
    "import_export",
    "pgtrigger",
    "axes",
    "csp",
    "django_htmx",
    "accounts",
    "repayments",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.IdleTimeoutMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
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
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("Baitiao Ops runs on PostgreSQL only (DATABASE_URL=postgres://…)")
# Persistent connections in production (gunicorn workers). Not under runserver:
# it serves each request on a new thread, and kept connections pile up until
# PostgreSQL refuses new clients (Django's docs warn about exactly this).
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0 if DEBUG else 60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

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
# The business time zone: due dates, DPD and schedules are counted here; the
# database stores UTC.
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"

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

# django-q2: the ORM broker on PostgreSQL by default; Redis when REDIS_URL is set
# so that clusters on several machines share one queue. `retry` must exceed
# `timeout`, or a slow task is handed to a second worker while the first runs.
Q_CLUSTER = {
    "name": "baitiao",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": 300,
    "retry": 360,
    "max_attempts": 3,
    "queue_limit": 50,
    "bulk": 10,
    "catch_up": False,
    "label": "Task queue",
    # Customer messages have their own queue and cluster (Q_CLUSTER_NAME=notify), so a
    # large collection run never delays "your debit failed" behind thousands of debits.
    "ALT_CLUSTERS": {"notify": {"workers": env.int("Q_NOTIFY_WORKERS", default=1)}},
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "COERCE_DECIMAL_TO_STRING": True,
}

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
RETRY_POLICY = {
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
    "max_days": 90,  # nobody extends further in one go (database check)
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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"pgserver": {"level": "WARNING"}, "httpx": {"level": "WARNING"}},
}
