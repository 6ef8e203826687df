from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models

from apps.core.labels import Label


class Collection(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    groups = models.ManyToManyField(Group, blank=True, related_name="collections")
    default_label = models.CharField(
        max_length=16, choices=Label.choices, default=Label.CONFIDENTIAL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Document(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        PARSING = "parsing", "Parsing"
        EMBEDDING = "embedding", "Embedding"
        INDEXED = "indexed", "Indexed"
        FAILED = "failed", "Failed"

    IN_PROGRESS = (Status.QUEUED, Status.PARSING, Status.EMBEDDING)

    collection = models.ForeignKey(Collection, on_delete=models.PROTECT, related_name="documents")
    title = models.CharField(max_length=500)
    file = models.FileField(upload_to="documents/%Y/%m/")
    original_name = models.CharField(max_length=500)
    mime_type = models.CharField(max_length=200, blank=True)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    label = models.CharField(max_length=16, choices=Label.choices)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    failure_reason = models.TextField(blank=True)
    chunk_count = models.PositiveIntegerField(default=0)
    # The text the chunks' offsets point into; a citation highlights a slice of it.
    text = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    indexed_at = models.DateTimeField(null=True, blank=True)
    # Versions (apps/knowledge/versions.py): a file uploaded under a current document's
    # name is a new row, version n+1 of the same lineage (`first_version`, blank on the
    # first). Once it is indexed the older ones get `superseded_at`, lose their points and
    # stay listed as history.
    version = models.PositiveIntegerField(default=1)
    first_version = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="later_versions"
    )
    superseded_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Set on documents a synced folder owns (apps/knowledge/sync.py); their original_name
    # is the path inside the folder.
    source = models.ForeignKey(
        "knowledge.Source",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="documents",
    )
    # Formats (apps/knowledge/parsers): an e-mail's attachments are documents of their
    # own whose `parent` is the message. Deleting the message leaves them as documents
    # (their points are theirs; a cascade would orphan them in the vector store).
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="attachments"
    )
    # Subject, from, to, date of an e-mail (whatever header fields the parser kept).
    metadata = models.JSONField(default=dict, blank=True)
    # Pages read by OCR (0: none) and Tesseract's mean word confidence over them (0-100).
    ocr_pages = models.PositiveIntegerField(default=0)
    ocr_confidence = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Among current documents only: an older version may hold the content a file
            # is reverted to.
            models.UniqueConstraint(
                fields=["collection", "sha256"],
                condition=models.Q(superseded_at__isnull=True),
                name="document_unique_content_per_collection",
            ),
            models.CheckConstraint(
                condition=models.Q(label__in=Label.values), name="document_label_known"
            ),
        ]
        indexes = [
            # Every upload asks for the current document of its name (versions.next_version);
            # without this each asks a scan of the collection, so a bulk load of n files
            # costs n² rows read.
            models.Index(
                fields=["collection", "original_name"],
                condition=models.Q(superseded_at__isnull=True),
                name="document_current_by_name",
            ),
        ]

    def __str__(self) -> str:
        return self.title


from apps.knowledge.sources_models import Source, SyncRun  # noqa: E402  (models Django finds)

__all__ = ["Collection", "Document", "Source", "SyncRun"]
