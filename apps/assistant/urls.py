from django.urls import path

from apps.assistant import views

app_name = "assistant"

urlpatterns = [
    path("", views.chat, name="chat"),
    path("ask/", views.ask, name="ask"),
    path("<uuid:conversation_id>/", views.chat, name="conversation"),
    path("answers/<int:message_id>/passages/<int:n>/", views.passage, name="passage"),
    path("answers/<int:message_id>/feedback/", views.feedback, name="feedback"),
    path("answers/<int:message_id>/escalate/", views.escalate, name="escalate"),
]
