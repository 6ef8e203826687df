"""Zip containers (OOXML and ODF) judged from their directory before any parser opens them.

The directory holds each member's declared size, and CPython's zipfile never yields more
than that, so reading the directory is enough: nothing is decompressed to find out how
big a file would become. The same rules hold for every container format.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from apps.knowledge.parsers.base import ParseError, human_size

# Office XML compresses around 10:1 and rarely past 100:1; runs of zeros reach ~1000:1.
# The ratio rule only applies to members big enough to hurt.
MAX_RATIO = 200
RATIO_MIN_BYTES = 10 * 1024 * 1024
MAX_MEMBERS = 10_000

LOCKED_SENTENCE = (
    "The {kind} file is password-protected; open it, remove the password "
    "(save without encryption) and upload it again."
)


def check_zip(path: Path, *, kind: str, required: str, max_unpacked_bytes: int) -> set[str]:
    """Refuse a container that is damaged, lacks its main part or would unpack to too
    much; returns the member names."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as err:
        raise ParseError(
            f"The {kind} file could not be read: it looks damaged (not a valid zip archive: {err})."
        ) from None
    if len(members) > MAX_MEMBERS:
        raise ParseError(
            f"The {kind} holds {len(members)} files, over the limit of {MAX_MEMBERS}; "
            "it may be a zip bomb."
        )
    names = {m.filename for m in members}
    if required not in names:
        raise ParseError(
            f"The file is a zip archive without the part a {kind} has ({required}), "
            f"so it is not a {kind}."
        )
    total = sum(m.file_size for m in members)
    if total > max_unpacked_bytes:
        raise ParseError(
            f"The {kind} would unpack to {human_size(total)}, over the "
            f"{human_size(max_unpacked_bytes)} limit; it may be a zip bomb."
        )
    for member in members:
        if member.file_size < RATIO_MIN_BYTES:
            continue
        ratio = member.file_size / max(member.compress_size, 1)
        if ratio > MAX_RATIO:
            raise ParseError(
                f"The {kind} would unpack {human_size(member.compress_size)} into "
                f"{human_size(member.file_size)} (a ratio of {ratio:.0f} to 1); "
                "it may be a zip bomb."
            )
    return names


def read_member(path: Path, name: str) -> bytes:
    """One member's bytes; check_zip has bounded its size already."""
    with zipfile.ZipFile(path) as archive:
        return archive.read(name)
