"""Each uploaded file capped while it is received (README "Security").

`FileCapHandler` stands first in FILE_UPLOAD_HANDLERS and sees every chunk of every file
before Django's handlers store it (in memory for a request under
FILE_UPLOAD_MAX_MEMORY_SIZE, else in a temporary file). A file that passes
UPLOAD_MAX_BYTES is dropped there and then: what was stored of it is deleted, the rest of
it is read past without being kept, and the other files of the upload go on. The view
reports it with the others, in the order they were sent (`received_files`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http import HttpRequest

from apps.core.sizes import human_size


@dataclass(frozen=True)
class RefusedFile:
    name: str
    message: str


class FileCapHandler(FileUploadHandler):
    """Counts each file's bytes as they arrive and skips a file over UPLOAD_MAX_BYTES."""

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        # (field name, file name, refusal or None) per file part, in the order received.
        self.seen: list[tuple[str, str, RefusedFile | None]] = []

    def new_file(self, field_name: str, file_name: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, file_name, *args, **kwargs)
        self.seen.append((field_name, file_name, None))
        declared = self.content_length  # the part's own Content-Length, rarely sent
        if declared is not None and declared > settings.UPLOAD_MAX_BYTES:
            self._skip()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) > settings.UPLOAD_MAX_BYTES:
            self._skip()
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler builds the file

    def _skip(self) -> None:
        limit = settings.UPLOAD_MAX_BYTES
        name = self.file_name or "upload"
        self.seen[-1] = (
            self.field_name or "",
            name,
            RefusedFile(
                name,
                f"{name} is larger than {human_size(limit)}; the limit is {human_size(limit)}. "
                "Nothing of it was stored.",
            ),
        )
        raise SkipFile


def received_files(request: HttpRequest, field: str) -> list[UploadedFile | RefusedFile]:
    """The files of `field` in the order they were sent: stored ones, and a RefusedFile
    for each one the cap dropped while it was received."""
    stored = iter(request.FILES.getlist(field))
    caps = [h for h in request.upload_handlers if isinstance(h, FileCapHandler)]
    if not caps:
        return list(stored)
    received: list[UploadedFile | RefusedFile] = []
    for field_name, _, refused in caps[0].seen:
        if field_name != field:
            continue
        if refused is not None:
            received.append(refused)
        elif (upload := next(stored, None)) is not None:
            received.append(upload)
    received.extend(stored)  # none left, unless a handler after the cap stored more
    return received
