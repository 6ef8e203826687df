"""Asking the stronger, external model the question a local answer answered: only through
the egress gate, which prepares the exact payload and decides, audited either way."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured

from apps.assistant.models import Message
from apps.assistant.selectors import conversation_history
from apps.assistant.streaming import AnswerModel, StreamEvent, reply_without_model, stream_reply
from apps.routing import gate
from apps.routing import services as routing
from apps.routing.decision import failed_decision
from apps.routing.llm import StreamResult
from apps.routing.providers import Provider, external_provider

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


def escalate(*, user: AbstractBaseUser, answer: Message, trigger: str) -> Iterator[StreamEvent]:
    """Ask the external model the question `answer` answered, if the egress gate allows.

    `trigger`: "user" (the button), "local_down" or "auto". Denied → a message that says
    why, in plain words, and nothing leaves. The decision is audited either way.
    """
    conversation = answer.conversation
    asked = answer.reply_to
    if asked is None:
        raise ValueError("this answer has no question to escalate")
    broken: Exception | None = None
    provider: Provider | None
    try:
        provider = external_provider()
    except ImproperlyConfigured as err:  # e.g. its key file cannot be read
        provider, broken = None, err
    request, decision = gate.prepare_and_decide(
        user=user,
        conversation=conversation,
        question=asked.content,
        passages=answer.passages,
        history=conversation_history(conversation, before=asked),
        provider=provider,
        policy=gate.current_policy(),
    )
    if broken is not None:
        decision = failed_decision(broken, None, decision.payload_sha256)
    routing.decision_record(
        user=user, conversation=conversation, decision=decision, request=request, trigger=trigger
    )
    if not decision.allowed or provider is None:
        yield from reply_without_model(
            user=user,
            conversation=conversation,
            asked=asked,
            text="Not sent to the stronger model. " + decision.summary(),
            status=Message.Status.KEPT_LOCAL,
        )
        return
    sending_to = provider

    def record_call(reply: Message, result: StreamResult, error: str) -> None:
        routing.external_call_record(
            user=user,
            conversation=conversation,
            message_id=reply.pk,
            provider=sending_to,
            result=result,
            error=error,
        )

    yield from stream_reply(
        user=user,
        conversation=conversation,
        asked=asked,
        model=AnswerModel(provider.model, "external", provider.display),
        passages=request.passages,
        prompt_tokens=0,
        pieces=lambda result: gate.send(
            decision=decision, request=request, provider=sending_to, result=result
        ),
        record_call=record_call,
        error_suffix=" The answer above stays as it was.",
    )
