"""`/v1/chat/completions` and `/v1/models`: thin, bearer-token views over the chat's
service path (apps/api/answers.py). No session, no cookie, no CSRF token: the
Authorization header is the only credential."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

# Bearer-token endpoints: no cookie session is read here, and a browser never sends an
# Authorization header by itself, so there is no cross-site request to forge.
from django.views.decorators.csrf import csrf_exempt  # nosemgrep: no-csrf-exempt

from apps.api import answers, stream
from apps.api.auth import api_user, over_question_rate
from apps.api.chat_request import MODELS, parse_chat_request
from apps.api.errors import ApiError, bad_request
from apps.api.history import api_conversation_create
from apps.assistant import services
from apps.assistant.streaming import StreamEvent
from apps.routing.model_queue import local_model_full

View = Callable[[HttpRequest], HttpResponseBase]


def _openai_errors(method: str) -> Callable[[View], View]:
    """One method per endpoint; every ApiError becomes OpenAI's error JSON."""

    def wrap(view: View) -> View:
        def inner(request: HttpRequest) -> HttpResponseBase:
            if request.method != method:
                return ApiError(405, f"Use {method} here.", code="method_not_allowed").response()
            try:
                return view(request)
            except ApiError as err:
                return err.response()

        inner.__name__ = view.__name__
        inner.__doc__ = view.__doc__
        return csrf_exempt(inner)  # nosemgrep: no-csrf-exempt - see the import

    return wrap


@_openai_errors("GET")
def models(request: HttpRequest) -> HttpResponse:
    api_user(request, endpoint="models")
    created = int(time.time())
    return JsonResponse(
        {
            "object": "list",
            "data": [
                {
                    "id": name,
                    "object": "model",
                    "created": created,
                    "owned_by": "enclave",
                    "description": text,
                }
                for name, text in MODELS.items()
            ],  # fmt: skip
        }
    )


@_openai_errors("POST")
def chat_completions(request: HttpRequest) -> HttpResponseBase:
    user, token_id = api_user(request, endpoint="chat.completions")
    chat = parse_chat_request(request.body)
    try:
        question = services.question_clean(chat.question)
    except services.QuestionRejected as err:
        raise bad_request(str(err), param="messages") from None
    limited = over_question_rate(user, settings.QUESTION_RATE_PER_MINUTE)
    if limited is not None:
        raise limited
    if local_model_full():
        raise answers.model_busy()
    conversation = api_conversation_create(user=user, history=chat.history, token_id=token_id)
    events = answers.question_events(
        user=user, conversation=conversation, question=question, external=chat.external
    )
    # Up to the first word of an answer: whether it fails or is refused is known by then,
    # while the status line can still say so.
    started: list[StreamEvent] = []
    for event in events:
        started.append(event)
        if event.kind == "token":
            break
    else:
        outcome = answers.outcome_of(started)
        error = answers.refusal(outcome, request)
        if error is not None:
            raise error
    if chat.stream:
        response = StreamingHttpResponse(
            stream.sse(
                request=request,
                chat=chat,
                conversation_id=str(conversation.pk),
                started=started,
                rest=events,
            ),
            content_type="text/event-stream",
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: do not hold the stream back
        return response
    started.extend(events)
    outcome = answers.outcome_of(started)
    error = answers.refusal(outcome, request)
    if error is not None:
        raise error
    return JsonResponse(answers.completion(outcome.final, model=chat.model, request=request))
