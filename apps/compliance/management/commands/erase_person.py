"""manage.py erase_person USER: erase a person and keep the audit chain verifiable
(apps/compliance/erasure.py). Asks for the username again unless --yes."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.compliance.erasure import ErasureError, person_erase, person_get, person_preview


class Command(BaseCommand):
    help = "Erase a person: conversations, uploads, account and person keys (GDPR Art. 17)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--yes", action="store_true", help="do not ask to type the username again"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"]
        try:
            user = person_get(username=username)
        except ErasureError as exc:
            raise CommandError(str(exc)) from exc
        preview = person_preview(user=user)
        self.stdout.write(
            f"{username} (id {preview.user_id}): {preview.conversations} conversations, "
            f"{preview.messages} messages, {preview.feedback} ratings, {preview.documents} "
            f"uploaded documents, {preview.api_tokens} API tokens; {preview.audit_events} "
            f"audit events whose personal fields become unreadable."
        )
        if not options["yes"]:
            typed = input("Type the username again to erase it for good: ")
            if typed != username:
                raise CommandError("The name typed does not match; nothing was erased.")
        try:
            done = person_erase(user=user, actor=None)
        except ErasureError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Erased account id {done.user_id}: {done.conversations} conversations, "
            f"{done.documents} documents, {done.keys} person keys deleted; the audit chain "
            "is unchanged (run manage.py audit_verify)."
        )
