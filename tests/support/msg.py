"""Outlook .msg files for tests, written from scratch: a compound file (MS-CFB, version 3,
512-byte sectors, small streams in the mini stream) holding the MAPI property streams
that [MS-OXMSG] defines for a message and its attachments. No library here writes them.
"""

from __future__ import annotations

import struct
from pathlib import Path

SECTOR = 512
MINI = 64
CUTOFF = 4096
FREE, END, FATSECT, NOSTREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF

Tree = dict[str, "bytes | Tree"]


def _sort_key(name: str) -> tuple[int, str]:
    return len(name), name.upper()  # the order MS-CFB gives siblings


class _Entry:
    def __init__(self, name: str, kind: int, data: bytes = b"") -> None:
        self.name, self.kind, self.data = name, kind, data
        self.left = self.right = self.child = NOSTREAM
        self.start, self.size = END, len(data)

    def pack(self) -> bytes:
        name = self.name.encode("utf-16-le") + b"\x00\x00"
        return (
            name.ljust(64, b"\x00")
            + struct.pack("<HBB3I", len(name), self.kind, 1, self.left, self.right, self.child)
            + bytes(16 + 4 + 16)
            + struct.pack("<IQ", self.start, self.size)
        )


def _flatten(tree: Tree, entries: list[_Entry], parent: _Entry) -> None:
    ids: list[int] = []
    for name in sorted(tree, key=_sort_key):
        value = tree[name]
        entry = _Entry(
            name, 1 if isinstance(value, dict) else 2, b"" if isinstance(value, dict) else value
        )
        entries.append(entry)
        ids.append(len(entries) - 1)
        if isinstance(value, dict):
            _flatten(value, entries, entry)
    # Siblings as a chain of right children: a valid (if unbalanced) binary search tree.
    if ids:
        parent.child = ids[0]
        for here, after in zip(ids, ids[1:], strict=False):
            entries[here].right = after


def compound_file(tree: Tree) -> bytes:
    root = _Entry("Root Entry", 5)
    entries = [root]
    _flatten(tree, entries, root)
    mini = bytearray()
    minifat: list[int] = []
    big: list[_Entry] = []
    for entry in entries[1:]:
        if entry.kind != 2 or not entry.size:
            continue
        if entry.size >= CUTOFF:
            big.append(entry)
            continue
        entry.start = len(mini) // MINI
        count = -(-entry.size // MINI)
        minifat.extend(list(range(entry.start + 1, entry.start + count)) + [END])
        mini += entry.data.ljust(count * MINI, b"\x00")

    def sectors(data: bytes) -> int:
        return -(-len(data) // SECTOR)

    dir_bytes = b"".join(e.pack() for e in entries)
    dir_bytes += b"\x00" * ((-len(dir_bytes)) % SECTOR)
    minifat_bytes = b"".join(struct.pack("<I", v) for v in minifat)
    minifat_bytes += struct.pack("<I", FREE) * ((-len(minifat_bytes) // 4) % (SECTOR // 4))
    blobs = [dir_bytes, minifat_bytes, bytes(mini)] + [e.data for e in big]
    data_sectors = sum(sectors(b) for b in blobs)
    fat_sectors = 1
    while fat_sectors * (SECTOR // 4) < fat_sectors + data_sectors:
        fat_sectors += 1
    fat = [FATSECT] * fat_sectors
    starts: list[int] = []
    for blob in blobs:
        n = sectors(blob)
        starts.append(len(fat) if n else END)
        fat.extend(list(range(len(fat) + 1, len(fat) + n)) + [END] if n else [])
    fat.extend([FREE] * (fat_sectors * (SECTOR // 4) - len(fat)))
    root.start, root.size = starts[2], len(mini)
    for entry, start in zip(big, starts[3:], strict=True):
        entry.start = start
    dir_bytes = b"".join(e.pack() for e in entries)
    dir_bytes += b"\x00" * ((-len(dir_bytes)) % SECTOR)
    blobs[0] = dir_bytes
    difat = list(range(fat_sectors)) + [FREE] * (109 - fat_sectors)
    header = (
        bytes.fromhex("D0CF11E0A1B11AE1")
        + bytes(16)
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
        + bytes(6)
        + struct.pack("<IIIIIIIII", 0, fat_sectors, starts[0], 0, CUTOFF,
                      starts[1] if minifat else END,
                      sectors(minifat_bytes) if minifat else 0, END, 0)
        + b"".join(struct.pack("<I", v) for v in difat)
    )  # fmt: skip
    body = b"".join(struct.pack("<I", v) for v in fat)
    for blob in blobs:
        body += blob + b"\x00" * ((-len(blob)) % SECTOR)
    return header + body


def _text(value: str) -> bytes:
    return value.encode("utf-16-le")


def msg_bytes(
    *, subject: str, sender: str, to: str, date: str, body: str, attachments: dict[str, bytes]
) -> bytes:
    headers = f"From: {sender}\r\nTo: {to}\r\nDate: {date}\r\nSubject: {subject}\r\n\r\n"
    tree: Tree = {
        "__substg1.0_001A001F": _text("IPM.Note"),
        "__substg1.0_0037001F": _text(subject),
        "__substg1.0_1000001F": _text(body),
        "__substg1.0_0E04001F": _text(to),
        "__substg1.0_007D001F": _text(headers),
        "__properties_version1.0": struct.pack(
            "<8xIIII8x", 0, len(attachments), 0, len(attachments)
        ),
        "__nameid_version1.0": {
            "__substg1.0_00020102": b"",
            "__substg1.0_00030102": b"",
            "__substg1.0_00040102": b"",
        },
    }
    for number, (name, data) in enumerate(attachments.items()):
        tree[f"__attach_version1.0_#{number:08X}"] = {
            # PR_ATTACH_METHOD = 1 (by value), then the data and the file's names
            "__properties_version1.0": bytes(8) + struct.pack("<IIQ", 0x37050003, 6, 1),
            "__substg1.0_37010102": data,
            "__substg1.0_3707001F": _text(name),
            "__substg1.0_3704001F": _text(name[:12]),
        }
    return compound_file(tree)


def make_msg(directory: Path, *, name: str = "offer.msg", attachments: dict[str, bytes]) -> Path:
    path = directory / name
    path.write_bytes(
        msg_bytes(
            subject="Offer for Nordlys AS",
            sender="Ines Berg <ines@example.com>",
            to="sales@example.com",
            date="Mon, 07 Dec 2026 09:00:00 +0100",
            body="Please find the price list attached. Plan B is our proposal.\r\n",
            attachments=attachments,
        )
    )
    return path
