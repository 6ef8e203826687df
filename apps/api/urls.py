from django.urls import path

from apps.api import token_views, views

app_name = "api"

urlpatterns = [
    path("v1/chat/completions", views.chat_completions, name="chat_completions"),
    path("v1/models", views.models, name="models"),
    path("account/api-tokens/", token_views.tokens, name="tokens"),
    path("account/api-tokens/<int:token_id>/revoke/", token_views.revoke, name="revoke"),
]
