from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("knowledge", "0003_document_formats"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="document",
            index=models.Index(
                condition=models.Q(("superseded_at__isnull", True)),
                fields=["collection", "original_name"],
                name="document_current_by_name",
            ),
        ),
    ]
