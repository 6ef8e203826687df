from django.urls import path

from apps.compliance import egress_report_views, erasure_views, views

# The console is what people know as "the audit pages": it lives under /audit/ and its
# templates reverse "audit:…".
app_name = "audit"

urlpatterns = [
    path("", views.events, name="events"),
    path("events/<int:event_id>/", views.event_detail, name="event"),
    path("events/<int:event_id>/provenance/", views.event_provenance, name="event_provenance"),
    path("conversations/<str:conversation_id>/", views.provenance, name="provenance"),
    path("export.csv", views.export_csv, name="export_csv"),
    path("export.json", views.export_json, name="export_json"),
    path("verify/", views.verify, name="verify"),
    path("egress-report/", egress_report_views.egress_report, name="egress_report"),
    path("models/", views.models_register, name="models"),
    path("erase/", erasure_views.erase, name="erase"),
]
