"""The console's egress report page: a period in, the signed report out, as a printable
page or the JSON to download. Only for compliance officers, like the rest of the console;
POST only, since a report reads a whole period and verifies the chain."""

from __future__ import annotations

import json

from django import forms
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from apps.audit.seal_keys import SealKeyError
from apps.compliance.egress_report import Period, PeriodError
from apps.compliance.egress_statement import egress_report_create
from apps.compliance.views import compliance_required
from apps.core.http import AuthenticatedHttpRequest


class EgressReportForm(forms.Form):
    first_day = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    last_day = forms.DateField(
        label="To (included)", widget=forms.DateInput(attrs={"type": "date"})
    )
    format = forms.ChoiceField(choices=[("html", "page"), ("json", "JSON")], required=False)

    def clean(self) -> dict:
        data = super().clean() or {}
        if data.get("first_day") and data.get("last_day"):
            try:
                data["period"] = Period.parse(
                    data["first_day"].isoformat(), data["last_day"].isoformat()
                )
            except PeriodError as err:
                raise forms.ValidationError(str(err)) from err
        return data


@require_http_methods(["GET", "POST"])
@compliance_required
def egress_report(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, "audit/egress_report.html", {"form": EgressReportForm()})
    form = EgressReportForm(request.POST)
    if not form.is_valid():
        return render(request, "audit/egress_report.html", {"form": form}, status=400)
    period: Period = form.cleaned_data["period"]
    try:
        report = egress_report_create(period=period, actor=request.user)
    except SealKeyError as err:
        form.add_error(None, f"The report cannot be signed: {err}")
        return render(request, "audit/egress_report.html", {"form": form}, status=503)
    if form.cleaned_data.get("format") == "json":
        response = HttpResponse(
            json.dumps(report, indent=2, sort_keys=True) + "\n", content_type="application/json"
        )
        name = f"egress-report-{period.first_day}-{period.last_day}.json"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["Cache-Control"] = "no-store"
        return response
    return render(
        request, "audit/egress_report.html", {"form": form, "report": report, "period": period}
    )
