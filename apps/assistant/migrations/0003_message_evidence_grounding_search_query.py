from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("assistant", "0002_conversation_touched_labels_message_retrieved_and_more"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="search_query",
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name="message",
            name="evidence",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="message",
            name="grounding",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
