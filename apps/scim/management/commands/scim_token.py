"""`manage.py scim_token create NAME | list | revoke ID`: the identity provider's token."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.scim.auth import scim_token_create, scim_token_revoke
from apps.scim.models import ScimToken


class Command(BaseCommand):
    help = "Create (printed once), list or revoke the bearer tokens of SCIM provisioning."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="a new token, printed this once")
        create.add_argument("name", help="whose it is, e.g. 'okta'")
        sub.add_parser("list", help="the tokens, without their secrets")
        revoke = sub.add_parser("revoke", help="stop a token working")
        revoke.add_argument("id", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "create":
            try:
                created = scim_token_create(name=options["name"])
            except ValueError as err:
                raise CommandError(str(err)) from None
            self.stdout.write(created.secret)
            self.stderr.write(
                f"SCIM token {created.token.pk} ({created.token.name}). Copy it now: only its "
                "SHA-256 is kept."
            )
        elif action == "list":
            for t in ScimToken.objects.all():
                state = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "active"
                self.stdout.write(f"{t.pk}\t{t.name}\t{t.prefix}…\t{state}")
        else:
            token = ScimToken.objects.filter(pk=options["id"]).first()
            if token is None:
                raise CommandError(f"No SCIM token {options['id']}; see `scim_token list`.")
            scim_token_revoke(token=token)
            self.stdout.write(f"SCIM token {token.pk} revoked.")
