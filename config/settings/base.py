"""Embedded-mode settings: SQLite, in-process tasks, local artifacts.

Every value comes from the environment (django-environ); the defaults are safe only on
one machine. `config.settings.production` refuses them.
"""

import ipaddress
from datetime import timedelta
from pathlib import Path

import environ
import plotly
from django.core.exceptions import ImproperlyConfigured

from config.csp import CSP_DIRECTIVES

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def env_bool(name: str, *, default: bool) -> bool:
    """A boolean from the environment; anything but a clear yes or no stops the start-up."""
    raw = env.str(name, default=str(default)).strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use true/false, yes/no, on/off or 1/0.")


DEBUG = env_bool("DEBUG", default=True)
# Only for the embedded mode; production.py refuses to start with it.
DEVELOPMENT_SECRET_KEY = "embedded-mode-development-key-not-for-production"
SECRET_KEY = env.str("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

VAR_DIR = Path(env.str("LABLEDGER_VAR_DIR", default=str(BASE_DIR / "var")))

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'labledger.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded database lives in a folder that a fresh checkout does not have yet.
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets the dashboard read while a batch is being written; IMMEDIATE avoids
    # "database is locked" when two writers upgrade their read locks at once.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # The run table's covering index on metric summaries INCLUDEs a column for PostgreSQL;
    # SQLite builds it without that column, as it should, and `migrate` need not warn about it.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, with its health check skipped just after a clean request (see there).
    DATABASES["default"]["ENGINE"] = "config.postgresql"
    # Django turns psycopg's statement preparation off unless asked. Only config.db's
    # prepared_cursor binds on the server (Django's own cursors bind on the client and are never
    # prepared), so this prepares just the few hot fixed statements, on their fifth run.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
# Keep connections between requests (opening one costs about a millisecond on SQLite, more on
# PostgreSQL); health checks drop a connection the server has closed.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# PostgreSQL: no health check for a connection whose last request ended cleanly this recently.
DB_HEALTH_CHECK_WINDOW = env.float("DB_HEALTH_CHECK_WINDOW", default=0.5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets served locally, never from a CDN
    "django_tables2",
    "axes",
    "csp",
    "accounts",
    "audit",
    "tracker",
    "registry",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.ContentSecurityPolicy",  # django-csp's, its policy built once
    "config.middleware.RefuseNulCharacters",
    "config.middleware.DatabaseBusy",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout found during the request into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Failed-login throttling (django-axes, accounts/lockouts.py): the login page, the admin and Basic
# credentials on the MLflow API. LOGIN_FAILURE_LIMIT failures of one username from one address lock
# that pair out for LOGIN_COOLOFF_MINUTES; attempts during a lockout neither count nor extend it.
# The address is REMOTE_ADDR: behind a reverse proxy every client shares the proxy's, so lockouts
# then act per username (X-Forwarded-For is not trusted: a client could rotate it).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_COOLOFF_MINUTES = env.int("LOGIN_COOLOFF_MINUTES", default=15)
if LOGIN_FAILURE_LIMIT < 1 or LOGIN_COOLOFF_MINUTES < 1:
    raise ImproperlyConfigured("LOGIN_FAILURE_LIMIT and LOGIN_COOLOFF_MINUTES must be at least 1.")
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "accounts.lockouts.lockout_response"
AXES_VERBOSE = False
# Content-Security-Policy on every response (django-csp, config/csp.py): scripts and styles only
# from this server's files; no inline script, no style="" attributes. The hashes let in the few
# <style> elements Plotly.js creates itself; a page that needs more relaxes it for itself only.
CONTENT_SECURITY_POLICY = {"DIRECTIVES": CSP_DIRECTIVES}
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:experiment-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
# Plotly.js is served from the installed `plotly` package, never from a CDN or the repository.
PLOTLY_PACKAGE_DATA = Path(plotly.__file__).parent / "package_data"
STATICFILES_DIRS = [BASE_DIR / "static", ("plotly", PLOTLY_PACKAGE_DATA)]

ARTIFACT_ROOT = Path(env.str("ARTIFACT_ROOT", default=str(VAR_DIR / "artifacts")))
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(ARTIFACT_ROOT)},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Where artifacts and uploaded files go: "filesystem" (ARTIFACT_ROOT) or "s3", an S3-compatible
# bucket named by AWS_* variables (config/storage.py, docs/operations.md).
ARTIFACT_STORAGE = env.str("ARTIFACT_STORAGE", default="") or "filesystem"
if ARTIFACT_STORAGE == "s3":
    from config.storage import s3_storage_options

    STORAGES["default"] = {"BACKEND": "config.storage.ArtifactS3Storage", "OPTIONS": s3_storage_options(env)}
elif ARTIFACT_STORAGE != "filesystem":
    raise ImproperlyConfigured(f"ARTIFACT_STORAGE={ARTIFACT_STORAGE!r} must be 'filesystem' or 's3'.")
# What production serves static files with (collectstatic at image build): names carrying a
# content hash, which whitenoise caches as immutable for ten years, and a gzip copy of each
# file it serves to browsers that accept it (plotly.min.js: 4.8 MB, about 1.4 MB gzipped).
COMPRESSED_STATICFILES_STORAGE = {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=32 * 1024 * 1024)
# Largest file one artifact upload may store, in bytes; 0 means no limit. A reverse proxy's own
# body limit should sit a little above it, or the proxy refuses first (docs/operations.md).
MAX_ARTIFACT_BYTES = env.int("MAX_ARTIFACT_BYTES", default=5 * 1024**3)
if MAX_ARTIFACT_BYTES < 0:
    raise ImproperlyConfigured(f"MAX_ARTIFACT_BYTES={MAX_ARTIFACT_BYTES} is negative: use 0 for no limit.")

# Reviewed promotions: the policy of a registered model that has none of its own.
REGISTRY_PROTECTED_ALIASES = env.list("REGISTRY_PROTECTED_ALIASES", default=["production"])
REGISTRY_REQUIRED_APPROVALS = env.int("REGISTRY_REQUIRED_APPROVALS", default=1)
REGISTRY_REVIEW_ROLE = env.str("REGISTRY_REVIEW_ROLE", default="reviewer")
if REGISTRY_REQUIRED_APPROVALS < 1:
    raise ImproperlyConfigured(
        f"REGISTRY_REQUIRED_APPROVALS={REGISTRY_REQUIRED_APPROVALS} must be at least 1."
    )
if REGISTRY_REVIEW_ROLE not in ("reviewer", "admin"):
    raise ImproperlyConfigured(
        f"REGISTRY_REVIEW_ROLE={REGISTRY_REVIEW_ROLE!r} must be 'reviewer' or 'admin'."
    )

# What a user without a grant of their own may do on an experiment or a registered model
# (MLflow's basic-auth default is READ); the creator of one gets MANAGE, roles bound both.
DEFAULT_PERMISSION = env.str("DEFAULT_PERMISSION", default="READ").upper()
if DEFAULT_PERMISSION not in ("READ", "EDIT", "MANAGE", "NO_PERMISSIONS"):
    raise ImproperlyConfigured(
        f"DEFAULT_PERMISSION={DEFAULT_PERMISSION!r} must be READ, EDIT, MANAGE or NO_PERMISSIONS."
    )
# The least everyone without a grant holds on the `Default` experiment (id 0): MLflow clients log
# there when a script names no experiment, so it is EDIT unless turned off with NO_PERMISSIONS
# (Default then follows DEFAULT_PERMISSION). Roles still apply: a viewer never writes.
DEFAULT_EXPERIMENT_PERMISSION = env.str("DEFAULT_EXPERIMENT_PERMISSION", default="EDIT").upper()
if DEFAULT_EXPERIMENT_PERMISSION not in ("READ", "EDIT", "MANAGE", "NO_PERMISSIONS"):
    raise ImproperlyConfigured(
        f"DEFAULT_EXPERIMENT_PERMISSION={DEFAULT_EXPERIMENT_PERMISSION!r} must be READ, EDIT, MANAGE "
        "or NO_PERMISSIONS."
    )

REDIS_URL = env.str("REDIS_URL", default="")
# A broker that needs no server (`make run` uses kombu's SQLAlchemy transport on SQLite) may be named
# directly; otherwise Redis, or memory when tasks run eagerly. Celery opens even an eager task's
# broker connection, and kombu warns on a memory URL without a host name.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or REDIS_URL or "memory://localhost/"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
# Deployments (or test processes) sharing one Redis keep their tasks apart by queue name.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="celery")
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}

# Bulk uploads: the largest file accepted (0: no limit), how long a worker may go silent before its
# upload counts as abandoned, and how often beat looks for abandoned ones (tracker/tasks.py).
MAX_UPLOAD_BYTES = env.int("MAX_UPLOAD_BYTES", default=20 * 1024**3)
# What a gzip-compressed upload may expand to (0: no limit): by default no more than the largest
# uncompressed upload, so compression never buys more of a worker's time than a plain file could.
MAX_UPLOAD_EXPANDED_BYTES = env.int("MAX_UPLOAD_EXPANDED_BYTES", default=MAX_UPLOAD_BYTES)
UPLOAD_LEASE_SECONDS = env.int("UPLOAD_LEASE_SECONDS", default=120)
# An upload whose ingest fails this many times with an unexpected error ends `failed`, naming it.
UPLOAD_MAX_ATTEMPTS = env.int("UPLOAD_MAX_ATTEMPTS", default=5)
CELERY_BEAT_SCHEDULE["tracker-requeue-stalled-uploads"] = {
    "task": "tracker.requeue_stalled_uploads",
    "schedule": env.float("UPLOAD_SWEEP_SECONDS", default=60.0),
}

# Single metric points leave their chart rollups to a fold this often (tracker.services.rollups);
# until then charts read those steps from the points.
ROLLUP_FOLD_SECONDS = env.float("ROLLUP_FOLD_SECONDS", default=5.0)
CELERY_BEAT_SCHEDULE["tracker-fold-stale-rollups"] = {
    "task": "tracker.fold_stale_rollups",
    "schedule": ROLLUP_FOLD_SECONDS,
}

# Audit checkpoints (docs/operations.md). The signing key never enters the database: a PEM
# (or base64 of the raw 32 bytes) in AUDIT_SIGNING_KEY, or a PEM file; embedded mode generates
# the file on first use. Each checkpoint is also appended to AUDIT_CHECKPOINT_FILE (JSON lines)
# and, when AUDIT_CHECKPOINT_STORAGE names a STORAGES alias, stored there one object each.
AUDIT_SIGNING_KEY = env.str("AUDIT_SIGNING_KEY", default="")
AUDIT_SIGNING_KEY_FILE = Path(
    env.str("AUDIT_SIGNING_KEY_FILE", default=str(VAR_DIR / "audit" / "signing-key.pem"))
)
AUDIT_GENERATE_SIGNING_KEY = env_bool("AUDIT_GENERATE_SIGNING_KEY", default=True)
# Public keys of retired signing keys (PEM files), so older checkpoints still verify.
AUDIT_PREVIOUS_PUBLIC_KEYS = [Path(p) for p in env.list("AUDIT_PREVIOUS_PUBLIC_KEYS", default=[])]
AUDIT_CHECKPOINT_FILE = env.str("AUDIT_CHECKPOINT_FILE", default=str(VAR_DIR / "audit" / "checkpoints.jsonl"))
AUDIT_CHECKPOINT_STORAGE = env.str("AUDIT_CHECKPOINT_STORAGE", default="")
AUDIT_CHECKPOINT_INTERVAL_SECONDS = env.int("AUDIT_CHECKPOINT_INTERVAL_SECONDS", default=600)
AUDIT_VERIFY_INTERVAL_SECONDS = env.int("AUDIT_VERIFY_INTERVAL_SECONDS", default=3600)
AUDIT_FULL_VERIFY_INTERVAL_SECONDS = env.int("AUDIT_FULL_VERIFY_INTERVAL_SECONDS", default=86400)
# Writers commit events unsealed; the sealer links them into the chain this often (audit.sealing).
AUDIT_SEAL_INTERVAL_SECONDS = env.float("AUDIT_SEAL_INTERVAL_SECONDS", default=5.0)
CELERY_BEAT_SCHEDULE |= {
    "audit-seal": {"task": "audit.seal_events", "schedule": AUDIT_SEAL_INTERVAL_SECONDS},
    "audit-checkpoint": {"task": "audit.make_checkpoint", "schedule": AUDIT_CHECKPOINT_INTERVAL_SECONDS},
    "audit-verify": {"task": "audit.verify_chain", "schedule": AUDIT_VERIFY_INTERVAL_SECONDS},
    "audit-verify-full": {
        "task": "audit.verify_chain",
        "schedule": AUDIT_FULL_VERIFY_INTERVAL_SECONDS,
        "kwargs": {"full": True},
    },
}

# Webhooks (registry.services.webhook_delivery): beat sends new registry events this often; a
# receiver has WEBHOOK_TIMEOUT_SECONDS to answer, and a delivery is tried up to
# WEBHOOK_MAX_ATTEMPTS times. Links in a delivery start with PUBLIC_URL, the dashboard's address
# as its users reach it.
PUBLIC_URL = env.str("PUBLIC_URL", default="http://127.0.0.1:8000")
WEBHOOK_DISPATCH_SECONDS = env.float("WEBHOOK_DISPATCH_SECONDS", default=5.0)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5.0)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=8)
# Webhooks send only to public addresses, and to these networks (CIDR, comma-separated: an
# office chat server's, say); registry.services.webhook_addresses says why. Parsed here, so a
# mistyped network stops the server at start instead of every delivery.
WEBHOOK_ALLOWED_NETWORKS = [
    str(ipaddress.ip_network(network.strip(), strict=False))
    for network in env.list("WEBHOOK_ALLOWED_NETWORKS", default=[])
    if network.strip()
]
CELERY_BEAT_SCHEDULE["registry-dispatch-webhooks"] = {
    "task": "registry.dispatch_webhooks",
    "schedule": WEBHOOK_DISPATCH_SECONDS,
    # A dispatch still waiting when the next is sent is dropped: slow receivers never pile them up.
    "options": {"expires": WEBHOOK_DISPATCH_SECONDS},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Every /api/v1 view (config.api.ApiView) takes this: authenticated, with the viewer role.
    "DEFAULT_PERMISSION_CLASSES": ["accounts.authentication.HasViewerRole"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "config.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Lab Ledger API",
    "DESCRIPTION": "Experiment tracking, reviewed model registry and audit trail.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The viewer-role gate of every /api/v1 view: the schema lists every endpoint, and a user
    # without a role may use none of them.
    "SERVE_PERMISSIONS": ["accounts.authentication.HasViewerRole"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No validator badge: it would load an image from the internet.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"refusals_without_traceback": {"()": "config.log_filters.RefusalsWithoutTraceback"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["refusals_without_traceback"]},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="WARNING")},
}
