"""The one settings module, configured from environment variables.

Every variable is listed in the README and in ``.env.example``. Defaults give the
local demo (SQLite, the filesystem Celery transport, mail printed to the console);
a production deployment sets ``DEBUG=false`` and the variables below. A value that
cannot be parsed stops start-up with ``ImproperlyConfigured`` naming the variable.
"""

from datetime import timedelta
from pathlib import Path

import environ
from csp import constants as csp
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
_unset = environ.Env()
_unset.ENVIRON = {}  # sees no variable: every read gives its default, parsed like a value
_BOOLEANS = {*environ.Env.BOOLEAN_TRUE_STRINGS, "false", "off", "n", "no", "0"}
if env.str("ENV_FILE", default=""):
    environ.Env.read_env(env.str("ENV_FILE"), overwrite=False)


def _strict(kind, name, **kwargs):
    """Read one variable with django-environ, turning a parse error into one clear line.

    An empty value (``NAME=``, as Compose passes an unset ``${NAME}``) counts as unset.
    """
    raw = env.str(name, default="").strip()
    if kind == "bool" and raw and raw.lower() not in _BOOLEANS:
        raise ImproperlyConfigured(
            f"Environment variable {name} is not a valid bool: {raw!r} (use true or false)"
        )
    source = env if raw or "default" not in kwargs else _unset
    try:
        return getattr(source, kind)(name, **kwargs)
    except (ValueError, TypeError, ImproperlyConfigured) as exc:
        raise ImproperlyConfigured(
            f"Environment variable {name} is not a valid {kind}: {exc}"
        ) from exc


def _database(url):
    """``DATABASES["default"]`` for ``url``; the message names the scheme, never the URL, which
    may hold a password."""
    scheme = url.partition("://")[0] if "://" in url else ""
    if scheme not in environ.Env.DB_SCHEMES:
        what = f"unknown scheme {scheme!r}" if scheme else "no scheme"
        raise ImproperlyConfigured(
            f"DATABASE_URL is not a database URL ({what}): use "
            "postgres://user:password@host:5432/name, or sqlite:////absolute/path.sqlite3."
        )
    try:
        return environ.Env.db_url_config(url)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"DATABASE_URL cannot be parsed: {exc}") from None


def _secret(name, default=None):
    """A secret from NAME, or from the file named by NAME_FILE (Docker secrets)."""
    path = env.str(f"{name}_FILE", default="")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path} cannot be read: {exc}") from exc
    return env.str(name, default=default)


DEBUG = _strict("bool", "DEBUG", default=True)
# Where the local demo keeps its SQLite database and Celery message files.
VAR_DIR = Path(_strict("str", "VAR_DIR", default=str(BASE_DIR / "var")))

_DEMO_SECRET_KEY = "insecure-local-demo-key-change-me"
SECRET_KEY = _secret("SECRET_KEY", default="" if not DEBUG else _DEMO_SECRET_KEY)
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) must be set when DEBUG is false.")

_LOCAL_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]
ALLOWED_HOSTS = _strict("list", "ALLOWED_HOSTS", default=_LOCAL_HOSTS[:3])
if (DEBUG or SECRET_KEY == _DEMO_SECRET_KEY) and not set(ALLOWED_HOSTS) <= set(_LOCAL_HOSTS):
    # Debug pages and a published key are for the local demo only, never a reachable host.
    raise ImproperlyConfigured(
        "DEBUG=true and the demo SECRET_KEY only serve localhost: set DEBUG=false and a "
        "SECRET_KEY (or SECRET_KEY_FILE) before adding hosts to ALLOWED_HOSTS."
    )
CSRF_TRUSTED_ORIGINS = _strict("list", "CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = _strict("url", "SITE_URL", default="http://127.0.0.1:8000").geturl().rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.sites",
    "rest_framework",
    "drf_spectacular",
    "csp",
    "django_celery_beat",
    "pgtrigger",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.mfa",
    "directory",
    "entitlements",
    "notifications",
    "approvals",
    "reviews",
    "extensions",
    "identity",
    "myaccess",
    "api",
    "scim",
    "reports",
    "configfile",
    "drf_spectacular_sidecar",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every response (settings under "Security").
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # Before anything reads the body, the session or the database: an unreadable request
    # (a NUL byte, a form that is not UTF-8, too many fields) gets a 400 page.
    "config.middleware.RejectUnreadableRequestsMiddleware",
    # Every response carries a request-id header, as Graph's do; API errors repeat it.
    "api.middleware.RequestIdMiddleware",
    # Request latency by view for /metrics; each request's log line and log context.
    "config.metrics.MetricsMiddleware",
    "config.logs.RequestLogMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "config.middleware.PreferredLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # Pages and API answers about people are never kept by browsers or shared caches.
    "config.middleware.NoStoreForPeopleMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
SITE_ID = 1

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
# PostgreSQL in production and in the test suite; SQLite only for the local demo.
_DATABASE_URL = _strict("str", "DATABASE_URL", default="")
if not _DATABASE_URL:
    # The demo's database; a fresh clone has no var/ yet, and SQLite does not create it.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    _DATABASE_URL = f"sqlite:///{VAR_DIR / 'demo.sqlite3'}"
DATABASES = {"default": _database(_DATABASE_URL)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The demo runs web, worker and beat on one file: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The JIT compiled the package search on every request (504 of its 556 ms, see
    # docs/benchmarks.md); this product's queries are short and index-driven.
    _pg_options = DATABASES["default"].setdefault("OPTIONS", {})
    _pg_options["options"] = f"{_pg_options.get('options', '')} -c jit=off".strip()
DATABASES["default"]["CONN_MAX_AGE"] = _strict("int", "DATABASE_CONN_MAX_AGE", default=0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "directory.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

# --- Sign-in (django-allauth) ------------------------------------------------------------
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_UNIQUE_EMAIL = True
# A password reset for an address the directory does not know sends nothing to it.
ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = False
# The directory is the source of accounts: people do not sign themselves up.
ACCOUNT_ADAPTER = "directory.adapters.DirectoryAccountAdapter"
# Links single sign-on to directory users, and lets guests of connected organizations in.
SOCIALACCOUNT_ADAPTER = "identity.adapters.GuestSocialAccountAdapter"
MFA_SUPPORTED_TYPES = ["totp", "webauthn", "recovery_codes"]
MFA_PASSKEY_LOGIN_ENABLED = False
MFA_REQUIRED_FOR_APPROVERS = _strict("bool", "MFA_REQUIRED_FOR_APPROVERS", default=False)
# How long after giving an approval its approver may still revoke it (approvals.services
# approval_revoke); 0 turns revoking off.
_REVOKE_DAYS = _strict("int", "APPROVAL_REVOKE_WINDOW_DAYS", default=7)
if _REVOKE_DAYS < 0:
    raise ImproperlyConfigured(
        "Environment variable APPROVAL_REVOKE_WINDOW_DAYS cannot be negative"
    )
APPROVAL_REVOKE_WINDOW = timedelta(days=_REVOKE_DAYS)

# Custom extensions (extensions.models): a signing secret reference names an environment
# variable starting with CUSTOM_EXTENSION_, or a file inside this directory (unset: no file
# references); endpoints on loopback, private or link-local addresses only when allowed.
CUSTOM_EXTENSION_SECRETS_DIR = _strict("str", "CUSTOM_EXTENSION_SECRETS_DIR", default="")
CUSTOM_EXTENSIONS_ALLOW_PRIVATE_NETWORKS = _strict(
    "bool", "CUSTOM_EXTENSIONS_ALLOW_PRIVATE_NETWORKS", default=False
)

# The organisation's own email domains: people with such an address are members, never guests;
# any other domain is a connected organization's (guests) or unknown.
INTERNAL_EMAIL_DOMAINS = [
    domain.lower() for domain in _strict("list", "INTERNAL_EMAIL_DOMAINS", default=[])
]

OIDC_CLIENT_ID = env.str("OIDC_CLIENT_ID", default="")
SOCIALACCOUNT_PROVIDERS = {}
if OIDC_CLIENT_ID:
    _oidc_server = _strict("url", "OIDC_SERVER_URL", default="").geturl()
    if not _oidc_server:
        raise ImproperlyConfigured("OIDC_SERVER_URL must be set when OIDC_CLIENT_ID is set.")
    SOCIALACCOUNT_PROVIDERS["openid_connect"] = {
        "APPS": [
            {
                "provider_id": env.str("OIDC_PROVIDER_ID", default="sso"),
                "name": env.str("OIDC_PROVIDER_NAME", default="Single sign-on"),
                "client_id": OIDC_CLIENT_ID,
                "secret": _secret("OIDC_CLIENT_SECRET", default=""),
                "settings": {"server_url": _oidc_server},
            }
        ]
    }

# --- Internationalization -----------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = _strict("str", "TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = _strict("path", "STATIC_ROOT", default=str(VAR_DIR / "static"))
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").exists() else []
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Security -----------------------------------------------------------------------------
SESSION_COOKIE_SECURE = _strict("bool", "SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = _strict("bool", "SECURE_SSL_REDIRECT", default=False)
# Probes inside the compose network ask over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = _strict("int", "SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _strict("bool", "SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = _strict("bool", "SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# No inline script or style anywhere: what a page runs comes from this site's files, or
# carries the response's nonce (the Swagger UI's one <style>). Data URIs only for images.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF, csp.NONCE],
        "style-src": [csp.SELF, csp.NONCE],
        "img-src": [csp.SELF, "data:"],
        "font-src": [csp.SELF],
        "connect-src": [csp.SELF],
        "object-src": [csp.NONE],
        "base-uri": [csp.NONE],
        "frame-ancestors": [csp.NONE],
    }
}

# --- Email ----------------------------------------------------------------------------------
EMAIL_URL = _strict("email_url", "EMAIL_URL", default="consolemail://")
vars().update(EMAIL_URL)
DEFAULT_FROM_EMAIL = _strict("str", "DEFAULT_FROM_EMAIL", default="My Access <no-reply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Cache and Celery --------------------------------------------------------------------------
REDIS_URL = _strict("str", "REDIS_URL", default="")
if REDIS_URL:
    # Falls back to this process's memory while Redis is unreachable (see config/cache.py).
    CACHES = {"default": {"BACKEND": "config.cache.ResilientRedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Where workers and beat leave their heartbeats for /readyz: a cache every process shares.
CACHES["health"] = (
    {**CACHES["default"], "KEY_PREFIX": "health"}
    if REDIS_URL
    else {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(VAR_DIR / "health"),
    }
)
# /readyz: a worker on each queue seen within this many seconds (it beats every 10 s), and
# beat within this many (it sends a task at least every 30 s).
HEALTH_WORKER_MAX_AGE = _strict("int", "HEALTH_WORKER_MAX_AGE_SECONDS", default=60)
HEALTH_BEAT_MAX_AGE = _strict("int", "HEALTH_BEAT_MAX_AGE_SECONDS", default=120)
# /metrics answers only a bearer of this token (404 while it is unset).
METRICS_TOKEN = _secret("METRICS_TOKEN", default="")

# Without a Redis server, the local demo uses kombu's filesystem transport: worker and beat
# exchange messages through files under var/celery, so no broker process is needed.
CELERY_BROKER_URL = _strict("str", "CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _celery_dir = VAR_DIR / "celery"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_celery_dir / "out"),
        "data_folder_out": str(_celery_dir / "out"),
        "processed_folder": str(_celery_dir / "processed"),
        "control_folder": str(_celery_dir / "control"),
        "store_processed": False,
    }
else:
    # Longer than any countdown or ETA we schedule, so an unacked task is not redelivered early;
    # max_retries 0: a send while the broker is down fails at once (enqueue logs it, the reconciler
    # sends it later) instead of holding the request ~6 s per task. Workers reconnect on their own.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 3600, "max_retries": 0}
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = _strict("bool", "CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-task leaves the message for another worker
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
# django-celery-beat's scheduler, sending only while holding the schedule lock (config/beat.py).
CELERY_BEAT_SCHEDULER = "config.beat:LockedDatabaseScheduler"
# Three queues, so that slow work never delays a removal (docs/operations.md): "delivery"
# (grants, revocations, expiry and the reconciler that re-queues them), "notifications"
# (emails), "periodic" (beat's jobs and bulk work, and any task not routed). A worker started
# without -Q consumes all three; deployments run one worker for delivery of its own.
CELERY_TASK_QUEUES = {name: {} for name in ("delivery", "notifications", "periodic")}
CELERY_TASK_DEFAULT_QUEUE = "periodic"
CELERY_TASK_ROUTES = {
    **{
        f"entitlements.tasks.{name}": {"queue": "delivery"}
        for name in (
            "deliver_assignment",
            "deliver_assignments",
            "revoke_assignment_grants",
            "revoke_grants_batch",
            "resume_connected_system",
            "expire_due_assignments",
            "reconcile_assignments",
        )
    },
    "notifications.tasks.send_notification": {"queue": "notifications"},
    "notifications.tasks.send_notifications": {"queue": "notifications"},
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Periodic work. Beat's database scheduler copies these into django-celery-beat's tables on
# start, where admins can change or pause them. Each task is idempotent and set-based.
_EVERY_MINUTE = 60.0
CELERY_BEAT_SCHEDULE = {
    "expire due assignments": {
        "task": "entitlements.tasks.expire_due_assignments",
        "schedule": 30.0,
    },
    "start due scheduled requests": {
        "task": "approvals.tasks.start_due_requests",
        "schedule": 30.0,
    },
    "escalate due approval stages": {
        "task": "approvals.tasks.escalate_due_stages",
        "schedule": _EVERY_MINUTE,
    },
    "deny approval stages past their deadline": {
        "task": "approvals.tasks.expire_due_stages",
        "schedule": _EVERY_MINUTE,
    },
    "remind approvers": {
        "task": "approvals.emails.send_approval_reminders",
        "schedule": 15 * _EVERY_MINUTE,
    },
    "notify access ending soon": {
        "task": "notifications.tasks.notify_expiring_assignments",
        "schedule": 15 * _EVERY_MINUTE,
    },
    "remove access of users no longer eligible": {
        "task": "entitlements.tasks.remove_ineligible_assignments",
        "schedule": 15 * _EVERY_MINUTE,
    },
    "reconcile deliveries and removals": {
        "task": "entitlements.tasks.reconcile_assignments",
        "schedule": _EVERY_MINUTE,
    },
    "compare connected systems with the assignments (drift)": {
        "task": "entitlements.tasks.reconcile_drift",
        "schedule": 5 * _EVERY_MINUTE,  # each system at most once per its drift_interval
    },
    "start access reviews that are due": {
        "task": "reviews.tasks.schedule_due_reviews",
        "schedule": 15 * _EVERY_MINUTE,
    },
    "remind reviewers": {
        "task": "reviews.tasks.send_review_reminders",
        "schedule": 60 * _EVERY_MINUTE,
    },
    "end access reviews and apply results": {
        "task": "reviews.tasks.complete_due_reviews",
        "schedule": 5 * _EVERY_MINUTE,
    },
    "send notifications left pending": {
        "task": "notifications.tasks.requeue_pending_notifications",
        "schedule": _EVERY_MINUTE,
    },
    # People's changes reach the automatic policies at once (users_reevaluate); the hourly
    # run catches what a door missed.
    "evaluate automatic assignment policies": {
        "task": "entitlements.tasks.evaluate_automatic_policies",
        "schedule": 60 * _EVERY_MINUTE,
    },
    "run directory imports that are due": {
        "task": "identity.tasks.run_due_directory_imports",
        "schedule": 5 * _EVERY_MINUTE,  # each import then waits its own interval
    },
    "apply the guest lifecycle": {
        "task": "identity.tasks.sweep_guest_lifecycle",
        "schedule": 15 * _EVERY_MINUTE,
    },
    "send custom extension callouts again": {
        "task": "extensions.tasks.reconcile_callouts",
        "schedule": _EVERY_MINUTE,
    },
    "deny requests whose custom extension did not answer": {
        "task": "extensions.tasks.time_out_callouts",
        "schedule": _EVERY_MINUTE,
    },
    "call custom extensions before expiration": {
        "task": "extensions.tasks.call_extensions_before_expiration",
        "schedule": 15 * _EVERY_MINUTE,
    },
}

# --- REST API -------------------------------------------------------------------------------
# The Graph-compatible API (api/): bearer tokens from /oauth2/v2.0/token or personal tokens,
# or the browser's session (with CSRF). What a token may call is decided in api.permissions;
# which rows it sees, by the same restrict() and services as the portal and the admin.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.GraphPermission"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.graph.parsers.GraphJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "api.graph.schema.GraphAutoSchema",
    "DEFAULT_PAGINATION_CLASS": None,
    "EXCEPTION_HANDLER": "api.graph.errors.graph_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Entitlement management API",
    "DESCRIPTION": "Microsoft Graph v1.0 identityGovernance/entitlementManagement, served by "
    "the product: catalogs, access packages, policies, requests, assignments, approvals and "
    "access reviews.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["api.graph.schema.graph_paths"],
}
# Lifetime of an access token from /oauth2/v2.0/token (Entra's default is 60 to 90 minutes).
API_TOKEN_LIFETIME = timedelta(minutes=_strict("int", "API_TOKEN_LIFETIME_MINUTES", default=60))
# Longest page a client may ask for with $top (Graph's limit for most collections).
API_MAX_PAGE_SIZE = 999

# --- Product behaviour ----------------------------------------------------------------------
# How long a stuck delivery waits before the reconciler picks it up again.
DELIVERY_STUCK_AFTER = timedelta(minutes=_strict("int", "DELIVERY_STUCK_AFTER_MINUTES", default=5))
# A connector call that failed and may succeed later is retried after this many seconds,
# doubled on each retry up to the maximum, with jitter (entitlements.services.delivery).
CONNECTOR_RETRY_BACKOFF = _strict("float", "CONNECTOR_RETRY_BACKOFF_SECONDS", default=30.0)
CONNECTOR_RETRY_BACKOFF_MAX = _strict(
    "float", "CONNECTOR_RETRY_BACKOFF_MAX_SECONDS", default=3600.0
)

# LOG_FORMAT=json: one JSON object per line, with request_id, actor, path, status, duration
# (and task_id, task_name in a worker); see config/logs.py.
LOG_FORMAT = _strict("str", "LOG_FORMAT", default="plain").lower()
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "config.logs.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "config.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": _strict("str", "LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # at INFO they log every URL called, query string (a custom extension's key) included
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
