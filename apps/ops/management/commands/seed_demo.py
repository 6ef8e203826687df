"""Seed the demo: one user per role, groups, two collections, sample documents.

Idempotent: existing users keep their passwords, existing documents are left alone.
"""

import json
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.files import File
from django.core.management.base import BaseCommand

from apps.accounts.roles import ensure_roles
from apps.core.labels import Label
from apps.core.migrations_check import require_migrated
from apps.core.roles import COMPLIANCE_OFFICER, EMPLOYEE, KNOWLEDGE_ADMIN
from apps.knowledge import services
from apps.knowledge.models import Collection, Document

DEMO_DIR = Path(__file__).resolve().parents[3] / "knowledge" / "demo"
FINANCE = "Finance"

USERS = [
    # username, role groups, access groups, description
    ("employee", [EMPLOYEE], [], "an employee"),
    ("fiona", [EMPLOYEE], [FINANCE], "an employee in the finance group"),
    ("admin", [KNOWLEDGE_ADMIN], [], "a knowledge admin"),
    ("compliance", [COMPLIANCE_OFFICER], [], "a compliance officer"),
]

COLLECTIONS = {
    "Company handbook": {
        "description": "Policies, IT help and product information for every employee.",
        "groups": [EMPLOYEE, KNOWLEDGE_ADMIN],
        "default_label": Label.INTERNAL,
    },
    "Finance — confidential": {
        "description": "Board memos and salary bands; finance group only.",
        "groups": [FINANCE],
        "default_label": Label.CONFIDENTIAL,
    },
}


class Command(BaseCommand):
    help = "Create the demo users, groups, collections and documents (idempotent)."

    def handle(self, *args: object, **options: object) -> None:
        require_migrated()
        ensure_roles()
        Group.objects.get_or_create(name=FINANCE)
        admin = None
        for username, roles, access, what in USERS:
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(settings.DEMO_PASSWORD)
                user.save()
                self.stdout.write(f"created user {username} ({what})")
            user.groups.add(*Group.objects.filter(name__in=roles + access))
            if username == "admin":
                admin = user
        for name, spec in COLLECTIONS.items():
            collection = Collection.objects.filter(name=name).first()
            if collection is None:
                collection = services.collection_create(
                    name=name,
                    description=str(spec["description"]),
                    default_label=str(spec["default_label"]),
                    groups=Group.objects.filter(name__in=spec["groups"]),
                    actor=admin,
                )
                self.stdout.write(f"created collection {name}")
        manifest = json.loads((DEMO_DIR / "manifest.json").read_text())
        queued = 0
        for entry in manifest:
            collection = Collection.objects.get(name=entry["collection"])
            path = DEMO_DIR / entry["file"]
            if Document.objects.filter(collection=collection, original_name=path.name).exists():
                continue
            with path.open("rb") as fh:
                try:
                    services.document_create(
                        collection=collection,
                        upload=File(fh, name=path.name),
                        user=admin,
                        label=entry["label"],
                        title=entry["title"],
                    )
                    queued += 1
                except services.UploadRejected as err:
                    self.stdout.write(f"skipped {path.name}: {err}")
        self.stdout.write(self.style.SUCCESS(f"demo seeded ({queued} documents queued)"))
