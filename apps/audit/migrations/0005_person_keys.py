"""Personal fields of audit events sealed under per-person keys (crypto-shredding, issue 17).

actor_username and target_repr become text: a sealed value is longer than the old limits.
The type change rewrites no row (varchar to text is binary-compatible), so the append-only
triggers see no UPDATE.
"""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0004_append_as_owner"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="PersonKey",
            fields=[
                ("id", models.UUIDField(primary_key=True, serialize=False)),
                ("subject", models.CharField(max_length=64)),
                ("period", models.CharField(max_length=7)),
                ("wrapped", models.BinaryField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="actor_username",
            field=models.TextField(blank=True),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="target_repr",
            field=models.TextField(blank=True),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["actor_pk", "id"], name="audit_actor_pk_id"),
        ),
        migrations.AddConstraint(
            model_name="personkey",
            constraint=models.UniqueConstraint(
                fields=("subject", "period"), name="audit_personkey_one"
            ),
        ),
    ]
