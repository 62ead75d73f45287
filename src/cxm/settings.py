"""Django settings, built from :mod:`cxm.config` (the only place the environment is read)."""

from __future__ import annotations

from typing import Any

import dj_database_url

from cxm import config as cxm_config

CXM = cxm_config.load()
CXM.data_dir.mkdir(parents=True, exist_ok=True)

SECRET_KEY = CXM.secret_key
DEBUG = CXM.debug
ALLOWED_HOSTS = CXM.allowed_hosts
CSRF_TRUSTED_ORIGINS = CXM.csrf_trusted_origins

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "huey.contrib.djhuey",
    "ninja",  # serves /api/v1/docs from its own static files (no CDN; fits the CSP)
    "cxm.core",
    "cxm.accounts",
    "cxm.ingest",
    "cxm.identity",
    "cxm.feedback",
    "cxm.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "cxm.web.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "cxm.urls"
WSGI_APPLICATION = "cxm.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "cxm.web.access.context",
            ],
        },
    },
]


def _database() -> dict[str, Any]:
    db: dict[str, Any] = dict(dj_database_url.parse(CXM.database_url, conn_max_age=600))
    if db["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets readers work beside the single writer; IMMEDIATE takes the write lock at
        # BEGIN so two writers queue on busy_timeout instead of failing mid-transaction.
        db["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": (
                "PRAGMA journal_mode=WAL;"
                f"PRAGMA synchronous={CXM.sqlite_synchronous};"
                "PRAGMA foreign_keys=ON;"
                # Deleted content is overwritten, so an erased person leaves no bytes behind
                # in free pages of the database file.
                "PRAGMA secure_delete=ON;"
                "PRAGMA cache_size=-65536;"
                "PRAGMA temp_store=MEMORY;"
            ),
        }
        db["CONN_MAX_AGE"] = 0 if db["NAME"] == ":memory:" else 600
        db.setdefault("TEST", {})["NAME"] = str(CXM.data_dir / "test.sqlite3")
    else:
        db["CONN_HEALTH_CHECKS"] = True
    return db


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [  # Django's recommended set
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = str(CXM.data_dir / "static")
(CXM.data_dir / "static").mkdir(exist_ok=True)  # whitenoise warns (an error in tests) without it
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Request bodies: ingest enforces Segment's own limits; everything else stays small.
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if CXM.production:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

if CXM.email_backend == "file":
    # One file per message (Django opens one connection per send) in the outbox; the files
    # hold email addresses, so only the data dir's owner may read them.
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(CXM.outbox_dir)
    CXM.outbox_dir.mkdir(mode=0o700, exist_ok=True)
else:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = CXM.smtp_host
EMAIL_PORT = CXM.smtp_port
EMAIL_HOST_USER = CXM.smtp_user
EMAIL_HOST_PASSWORD = CXM.smtp_password
EMAIL_USE_TLS = CXM.smtp_tls == "starttls"
EMAIL_USE_SSL = CXM.smtp_tls == "ssl"
EMAIL_TIMEOUT = 20
DEFAULT_FROM_EMAIL = CXM.email_from

HUEY: dict[str, Any]
if CXM.queue == "redis":
    HUEY = {"huey_class": "huey.RedisHuey", "name": "cxm", "url": CXM.redis_url}
else:
    HUEY = {
        "huey_class": "huey.SqliteHuey",
        "name": "cxm",
        "filename": str(CXM.data_dir / "queue.sqlite3"),
        "immediate": CXM.queue == "immediate",
        # The consumer polls the file; waiting at most 2 s when idle (huey's default backs off
        # to 10 s) keeps an invitation from waiting long for a worker, at no real cost.
        "consumer": {"max_delay": 2.0},
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Configured here, so `run_huey` does not add a handler of its own (every consumer
        # line was printed twice).
        "huey": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
