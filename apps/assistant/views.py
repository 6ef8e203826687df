"""The chat pages: thin, they call services and selectors."""

from __future__ import annotations

import json
from collections.abc import Iterator

from django.conf import settings
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from apps.accounts import ratelimit
from apps.assistant import escalation, selectors, services
from apps.assistant.presenters import answer_html
from apps.assistant.streaming import StreamEvent
from apps.core.http import AuthenticatedHttpRequest
from apps.core.roles import PERM_USE_ASSISTANT
from apps.routing import model_queue
from apps.routing.providers import external_provider

assistant_required = permission_required(PERM_USE_ASSISTANT, raise_exception=True)


@login_required
@assistant_required
@require_GET
def chat(request: AuthenticatedHttpRequest, conversation_id: str | None = None) -> HttpResponse:
    conversation = (
        selectors.conversation_for(request.user, conversation_id) if conversation_id else None
    )
    messages = list(conversation.messages.all()) if conversation else []
    questions = {m.pk: m for m in messages if m.role == "user"}
    for message in messages:
        # Read by the template only; Message has no such fields.
        message.html = answer_html(message) if message.role == "assistant" else ""  # type: ignore[attr-defined]
        asked = questions.get(message.reply_to_id or 0) if message.role == "assistant" else None
        rewritten = asked is not None and asked.search_query not in ("", asked.content)
        message.searched_for = asked.search_query if rewritten else ""  # type: ignore[attr-defined,union-attr]
    return render(
        request,
        "assistant/chat.html",
        {
            "conversation": conversation,
            "conversations": selectors.conversations_of(request.user)[:50],
            "chat_messages": messages,
            "question_max_chars": settings.QUESTION_MAX_CHARS,
            "escalation_available": external_provider() is not None,
        },
    )


def _sse(conversation_id: str, events: Iterator[StreamEvent]) -> Iterator[bytes]:
    # A first comment line makes proxies and the browser start the stream at once.
    yield b": stream open\n\n"
    for event in events:
        data = {**event.data, "conversation_id": conversation_id}
        yield f"event: {event.kind}\ndata: {json.dumps(data)}\n\n".encode()


@login_required
@assistant_required
@require_POST
def ask(request: AuthenticatedHttpRequest) -> HttpResponseBase:
    try:
        question = services.question_clean(request.POST.get("question", ""))
    except services.QuestionRejected as err:
        return JsonResponse({"error": str(err)}, status=400)
    limited = _over_question_rate(request) or _model_busy()
    if limited is not None:
        return limited
    raw_id = request.POST.get("conversation") or ""
    if raw_id:
        try:
            conversation = selectors.conversation_for(request.user, raw_id)
        except (Http404, ValueError):
            return JsonResponse({"error": "That conversation does not exist."}, status=404)
    else:
        conversation = services.conversation_create(user=request.user)
    events = services.ask(user=request.user, conversation=conversation, question=question)
    return _stream(str(conversation.pk), events)


def _over_question_rate(request: AuthenticatedHttpRequest) -> JsonResponse | None:
    """QUESTION_RATE_PER_MINUTE per user, counted in Redis across web processes."""
    limit = settings.QUESTION_RATE_PER_MINUTE
    window = ratelimit.question_hit(request.user.pk)
    if window.count <= limit:
        return None
    wait = ratelimit.minutes_and_seconds(window.retry_after)
    response = JsonResponse(
        {
            "error": f"You have asked {limit} questions in the last minute, the most allowed. "
            f"Please wait {wait} before asking again; your question was not sent."
        },
        status=429,
    )
    response["Retry-After"] = str(max(1, window.retry_after))
    return response


def _model_busy() -> JsonResponse | None:
    """The local model's queue is full: said at once, while the status can still say it
    (a request that finds it full later, in the stream, ends with the same sentence)."""
    if not model_queue.local_model_full():
        return None
    response = JsonResponse({"error": model_queue.BUSY}, status=503)
    response["Retry-After"] = str(model_queue.RETRY_AFTER_SECONDS)
    return response


@login_required
@assistant_required
@require_POST
def escalate(request: AuthenticatedHttpRequest, message_id: int) -> HttpResponseBase:
    """ "Ask the stronger model": the egress gate decides; the stream says what happened."""
    answer = selectors.message_for(request.user, message_id)
    events = escalation.escalate(user=request.user, answer=answer, trigger="user")
    return _stream(str(answer.conversation_id), events)


def _stream(conversation_id: str, events: Iterator[StreamEvent]) -> HttpResponseBase:
    response = StreamingHttpResponse(
        _sse(conversation_id, events), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: do not hold the stream back
    return response


@login_required
@assistant_required
@require_GET
def passage(request: AuthenticatedHttpRequest, message_id: int, n: int) -> HttpResponse:
    message = selectors.message_for(request.user, message_id)
    found = selectors.cited_passage(request.user, message, n)
    if found is None:
        raise Http404("This passage is not available to you.")
    return render(request, "assistant/passage.html", {"p": found, "message": message})


@login_required
@assistant_required
@require_POST
def feedback(request: AuthenticatedHttpRequest, message_id: int) -> HttpResponse:
    message = selectors.message_for(request.user, message_id)
    value = {"up": 1, "down": -1}.get(request.POST.get("value", ""))
    if value is None:
        return JsonResponse({"error": "Feedback is 'up' or 'down'."}, status=400)
    services.message_feedback(user=request.user, message=message, value=value)
    return JsonResponse({"ok": True, "value": request.POST["value"]})
