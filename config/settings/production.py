"""Team deployment: PostgreSQL, Redis, gunicorn. Refuses the embedded mode's insecure defaults."""

from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import (
    CELERY_TASK_ALWAYS_EAGER,
    DATABASES,
    DEBUG,
    DEVELOPMENT_SECRET_KEY,
    REDIS_URL,
    SECRET_KEY,
    env,
    env_bool,
)

if DEBUG:
    raise ImproperlyConfigured("DEBUG must be off in production: set DEBUG=false.")
if not SECRET_KEY or SECRET_KEY == DEVELOPMENT_SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set to a long random value in production.")
# The same test as Django's security.W009 check, which only warns under `check --deploy`: sessions,
# password resets and the Basic-credentials cache are signed with this key, so a guessable one is
# refused at start-up rather than reported by a command nobody runs.
if (
    len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH
    or len(set(SECRET_KEY)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
    or SECRET_KEY.startswith(SECRET_KEY_INSECURE_PREFIX)
):
    raise ImproperlyConfigured(
        f"SECRET_KEY is too weak for production: it needs at least {SECRET_KEY_MIN_LENGTH} characters, "
        f"{SECRET_KEY_MIN_UNIQUE_CHARACTERS} different ones, and no '{SECRET_KEY_INSECURE_PREFIX}' prefix "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )
# Tasks must reach workers: an in-process task would hold a web worker for a whole bulk upload.
if not REDIS_URL:
    raise ImproperlyConfigured(
        "REDIS_URL must be set in production: tasks run on Celery workers fed through it."
    )
if CELERY_TASK_ALWAYS_EAGER:
    raise ImproperlyConfigured(
        "CELERY_EAGER must be off in production: tasks never run inside the web process."
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" and not env_bool(
    "ALLOW_SQLITE_IN_PRODUCTION", default=False
):
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL in production.")

# The audit signing key must come from outside the database and outside the image: refuse to
# generate one silently next to the data it is meant to vouch for.
AUDIT_GENERATE_SIGNING_KEY = False
if not env.str("AUDIT_SIGNING_KEY", default="") and not env.str("AUDIT_SIGNING_KEY_FILE", default=""):
    raise ImproperlyConfigured(
        "Set AUDIT_SIGNING_KEY or AUDIT_SIGNING_KEY_FILE (an Ed25519 private key) in production: "
        "audit checkpoints are signed with it (docs/operations.md)."
    )
if not env.str("AUDIT_CHECKPOINT_FILE", default="") and not env.str("AUDIT_CHECKPOINT_STORAGE", default=""):
    raise ImproperlyConfigured(
        "Set AUDIT_CHECKPOINT_FILE (a path on another disk) or AUDIT_CHECKPOINT_STORAGE in "
        "production: checkpoints must be kept outside the database (docs/operations.md)."
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", default=True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
STORAGES["staticfiles"] = COMPRESSED_STATICFILES_STORAGE  # noqa: F405
