"""Caps on request bodies, checked before anything reads one (README "Security").

A body whose Content-Length is over the cap for its kind is refused with 413 and a
sentence, and not one byte of it is read: an upload (multipart/form-data) may carry
UPLOAD_REQUEST_MAX_BYTES in all, any other body (a form, JSON) FORM_MAX_BYTES, which is
Django's DATA_UPLOAD_MAX_MEMORY_SIZE (such a body is held in memory). A body without a
Content-Length (chunked) is never read by Django at all. Each file of an allowed upload
is capped again while it streams to disk (apps/knowledge/uploads.py).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, HttpResponse, JsonResponse

from apps.core.sizes import human_size


def _refuse(request: HttpRequest, status: int, sentence: str) -> HttpResponse:
    # Django's development server reads whatever is left of a body into memory before it
    # closes the connection (basehttp.ServerHandler.close); a refused body must not be
    # read at all, so its stream ends here. gunicorn discards the rest in small pieces.
    stream = getattr(request, "environ", {}).get("wsgi.input")  # WSGIRequest only
    if isinstance(stream, LimitedStream):
        stream.limit = 0
    if "application/json" in request.headers.get("Accept", ""):
        response: HttpResponse = JsonResponse({"error": sentence}, status=status)
    else:
        response = HttpResponse(sentence + "\n", status=status, content_type="text/plain")
    return response


def body_refusal(request: HttpRequest) -> HttpResponse | None:
    """The 400/413 answer for a body that must not be read, or None to go on."""
    raw = request.META.get("CONTENT_LENGTH") or ""
    if not raw:
        return None
    try:
        length = int(raw)
    except ValueError:
        length = -1
    if length < 0:
        return _refuse(request, 400, "The Content-Length header is not a size in bytes.")
    if request.content_type == "multipart/form-data":
        limit = settings.UPLOAD_REQUEST_MAX_BYTES
        if length <= limit:
            return None
        return _refuse(
            request,
            413,
            f"This upload is {human_size(length)}; one upload may carry "
            f"{human_size(limit)} in all, each file up to "
            f"{human_size(settings.UPLOAD_MAX_BYTES)}. Nothing was stored: "
            "upload fewer files at once.",
        )
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is None or length <= limit:
        return None
    return _refuse(
        request,
        413,
        f"This request's body is {human_size(length)}; the limit is {human_size(limit)}. "
        "It was not read.",
    )


class RequestBodyLimitMiddleware:
    """First in MIDDLEWARE: nothing (CSRF, sessions, a view) reads an oversized body."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return body_refusal(request) or self.get_response(request)
