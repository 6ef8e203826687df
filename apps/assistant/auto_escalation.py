"""When a local answer goes on to the stronger model by itself (the egress gate still
decides whether anything leaves): the local model was down or died mid-answer, or, with
the policy's `auto_escalate` on, it answered that the documents do not say.

A local model that is only busy (its queue full, or the wait too long:
apps/routing/model_queue.py) is no reason: the asker is told to try again in a minute.

The "cannot answer" signal is only consulted for answers to questions where retrieval
found relevant passages; otherwise the model is not asked at all.
"""

from __future__ import annotations

import re

from apps.assistant.models import Message
from apps.routing.gate import current_policy
from apps.routing.model_queue import BUSY

_DECLINES = re.compile(
    r"\b(documents? do(?:es)? not say|(?:can ?not|can't|unable to) (?:answer|find|tell)|"
    r"(?:do not|don't) know|no information|not (?:mentioned|provided|specified))\b",
    re.IGNORECASE,
)


def declines(text: str) -> bool:
    """The answer says it cannot answer."""
    return bool(_DECLINES.search(text or ""))


def escalation_trigger(reply: Message) -> str | None:
    """The trigger to escalate with ("local_down" or "auto"), or None: the answer stands."""
    if reply.error == BUSY:
        # The model is there, only busy: the asker tries again in a minute. Overflow to an
        # external model is not a rule anyone set.
        return None
    if reply.status in (Message.Status.FAILED, Message.Status.INCOMPLETE):
        # What arrived of an interrupted answer is kept, marked incomplete.
        return "local_down"
    if reply.status == Message.Status.COMPLETE and declines(reply.content):
        if current_policy().auto_escalate:
            return "auto"
    return None
