from django.urls import path

from apps.routing import views

app_name = "routing"

urlpatterns = [path("policy/", views.policy, name="policy")]
