"""The packaged MiniLM as the first, active embedder version, so an existing install
keeps answering: its points get `embedder` = this version's pk by the backfill
(README "Embedder versions and re-indexing")."""

from django.db import migrations
from django.utils import timezone


def create_base(apps, schema_editor):
    version = apps.get_model("retrieval", "EmbedderVersion")
    if not version.objects.filter(state="active").exists():
        version.objects.get_or_create(
            name="minilm",
            defaults={"path": "", "state": "active", "activated_at": timezone.now()},
        )


class Migration(migrations.Migration):
    dependencies = [("retrieval", "0001_initial")]

    operations = [migrations.RunPython(create_base, migrations.RunPython.noop)]
