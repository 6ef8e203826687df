from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models


class Conversation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(max_length=200, blank=True)
    # Every label (as it was then) of every document any turn retrieved. Only grows: the
    # egress gate keeps a conversation that touched sensitive text local for good.
    touched_labels = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["user", "-updated_at"])]

    def __str__(self) -> str:
        return self.title or "New conversation"

    def retrieved_document_ids(self) -> list[Any]:
        """Every document any turn of this conversation retrieved: the egress gate reads
        their labels again now (apps.routing.decision.ConversationSoFar)."""
        ids: set[Any] = set()
        for retrieved in Message.objects.filter(conversation_id=self.pk).values_list(
            "retrieved", flat=True
        ):
            ids.update(p.get("document_id") for p in retrieved or [])
        return sorted(ids, key=str)


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"

    class Status(models.TextChoices):
        STREAMING = "streaming", "Streaming"
        COMPLETE = "complete", "Complete"
        # The stream stopped before the model finished (server killed, timeout mid-way).
        INCOMPLETE = "incomplete", "Incomplete"
        # Nothing came back from the model at all.
        FAILED = "failed", "Failed"
        # Nothing readable or relevant was found; the model was not asked.
        NO_CONTEXT = "no_context", "No relevant documents"
        # The stronger model was asked for and the egress gate said no; content says why.
        KEPT_LOCAL = "kept_local", "Kept on our servers"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    reply_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replies"
    )
    # Where the answer came from, as shown under it.
    model_name = models.CharField(max_length=200, blank=True)
    model_where = models.CharField(max_length=16, blank=True)  # "local" | "external"
    model_display = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)
    # The numbered passages the model was given: n, chunk_id, document_id, collection_id,
    # title, section, page, char_start, char_end, label, score.
    passages = models.JSONField(default=list, blank=True)
    # On a question: every chunk retrieved for it (chunk_id, document_id, label), whether
    # or not it fitted in the prompt; the egress gate's taint check reads it.
    retrieved = models.JSONField(default=list, blank=True)
    # The subset of passages the answer cites, in order of first mention.
    citations = models.JSONField(default=list, blank=True)
    # On a question: the standalone text that was searched (the question itself, or the
    # question rewritten from the conversation when it depends on earlier turns).
    search_query = models.TextField(blank=True)
    # On an answer: the sentences quoted verbatim from the passages before the model's
    # answer, best first: {"text", "n" (passage number), "chunk_id", "document_id", "score"}.
    evidence = models.JSONField(default=list, blank=True)
    # On an answer: the check of the model's sentences against the passages:
    # {"sentences": int, "supported": int, "unsupported": [int, ...] (sentence indexes),
    #  "verdict": "kept" | "evidence_only"}; {} until checked.
    grounding = models.JSONField(default=dict, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    feedback = models.SmallIntegerField(null=True, blank=True)  # +1 / -1
    feedback_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:60]}"
