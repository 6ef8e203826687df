from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from apps.accounts import views as account_views

urlpatterns = [
    path("", account_views.home, name="home"),
    path("login/", account_views.SignInView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("chat/", include("apps.assistant.urls")),
    path("knowledge/", include("apps.knowledge.urls")),
    path("routing/", include("apps.routing.urls")),
    path("audit/", include("apps.compliance.urls")),
    path("django-admin/", admin.site.urls),
    # /v1/… (OpenAI-compatible API, personal tokens) and /scim/v2/… (apps/api, apps/scim).
    path("", include("apps.api.urls")),
    path("scim/v2/", include("apps.scim.urls")),
    # /healthz, /readyz, /metrics (apps/ops): probes and Prometheus, no sign-in.
    path("", include("apps.ops.urls")),
]

if settings.OIDC_ENABLED:
    # /oidc/authenticate/ starts the sign-in at the provider, /oidc/callback/ finishes it.
    urlpatterns.append(path("oidc/", include("mozilla_django_oidc.urls")))
