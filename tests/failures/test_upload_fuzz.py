"""Upload fuzzing (hypothesis, bounded): random bytes and mutated valid files.

Over the parsers: nothing but ParseError escapes parse_file, every ParseError is a
sentence a person can read, and what does parse keeps its offsets. Through the upload
view and the ingestion pipeline: no 500, and every document ends indexed or failed with a
reason.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from apps.knowledge import ingestion
from apps.knowledge.models import Document
from apps.knowledge.parsers import ParseError, parse_file
from tests.failures import helpers
from tests.support import fixtures

BUILDERS = {
    "pdf": fixtures.make_good_pdf,
    "docx": fixtures.make_good_docx,
    "html": fixtures.make_html,
    "md": fixtures.make_markdown,
    "txt": fixtures.make_plain_text,
}
_SEEDS: dict[str, bytes] = {}


def _seed(kind: str) -> bytes:
    if kind not in _SEEDS:
        with tempfile.TemporaryDirectory() as tmp:
            _SEEDS[kind] = BUILDERS[kind](Path(tmp)).read_bytes()
    return _SEEDS[kind]


# One mutation: (operation, position as a fraction of the length, bytes).
mutation = st.tuples(
    st.sampled_from(["flip", "insert", "delete", "truncate", "duplicate"]),
    st.floats(min_value=0, max_value=1),
    st.binary(min_size=1, max_size=32),
)


def _mutate(data: bytes, ops: list[tuple[str, float, bytes]]) -> bytes:
    buf = bytearray(data)
    for op, where, chunk in ops:
        i = int(where * max(len(buf) - 1, 0))
        if op == "flip" and buf:
            buf[i : i + len(chunk)] = bytes(
                b ^ c for b, c in zip(buf[i : i + len(chunk)], chunk, strict=False)
            )
        elif op == "insert":
            buf[i:i] = chunk
        elif op == "delete":
            del buf[i : i + len(chunk) * 8]
        elif op == "truncate":
            del buf[i:]
        elif op == "duplicate":
            buf[i:i] = buf[i : i + len(chunk) * 16]
    return bytes(buf)


inputs = st.one_of(
    st.tuples(st.just("random"), st.binary(max_size=4096)),
    st.tuples(
        st.sampled_from(sorted(BUILDERS)),
        st.lists(mutation, min_size=1, max_size=6),
    ).map(lambda kind_ops: (kind_ops[0], _mutate(_seed(kind_ops[0]), kind_ops[1]))),
)
NAMES = {"random": "upload.pdf", "pdf": "f.pdf", "docx": "f.docx", "html": "f.html"}


def _check_sentence(err: ParseError) -> None:
    sentence = str(err).strip()
    assert sentence and sentence[0].isupper() and sentence.endswith("."), repr(sentence)
    assert "Traceback" not in sentence and "\n" not in sentence


@hsettings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=inputs)
def test_parsers_raise_only_parse_errors_with_a_sentence(case: tuple[str, bytes]) -> None:
    kind, data = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / NAMES.get(kind, f"f.{kind}")
        path.write_bytes(data)
        try:
            parsed = parse_file(path, max_unpacked_bytes=settings.UNPACKED_MAX_BYTES)
        except ParseError as err:
            _check_sentence(err)
            return
    assert "\x00" not in parsed.text
    for section in parsed.sections:
        assert parsed.text[section.start : section.start + len(section.text)] == section.text


@pytest.mark.django_db(transaction=True)
def test_fuzzed_uploads_never_500_and_every_failure_has_a_reason(client, live_vectorstore):
    admin = helpers.admin_user("fuzz-admin")
    collection = helpers.make_collection("Fuzz", groups=[Group.objects.create(name="Fuzzers")])
    client.force_login(admin)
    cases = [  # fixed cases, so a failure reproduces
        ("random", bytes(range(256)) * 4),
        ("pdf", _mutate(_seed("pdf"), [("truncate", 0.5, b"x")])),
        ("pdf", _mutate(_seed("pdf"), [("flip", 0.1, b"\xff" * 32)])),
        ("docx", _mutate(_seed("docx"), [("delete", 0.3, b"x" * 16)])),
        ("docx", _mutate(_seed("docx"), [("truncate", 0.9, b"x")])),
        ("html", _mutate(_seed("html"), [("insert", 0.5, b"<<\x00</" * 8)])),
        ("md", _mutate(_seed("md"), [("insert", 0.2, b"\xff\xfe\x00\xd8")])),
        ("txt", b"\x00" * 2048),
    ]
    uploads = [
        SimpleUploadedFile(f"fuzz{i}.{'pdf' if kind == 'random' else kind}", data)
        for i, (kind, data) in enumerate(cases)
    ]
    resp = client.post(
        reverse("knowledge:upload_files"),
        {"collection": collection.pk, "files": uploads},
        HTTP_ACCEPT="application/json",
    )
    assert resp.status_code == 200, resp.content
    results = resp.json()["results"]
    assert len(results) == len(cases)
    for result in results:
        assert result["ok"] or result["message"].strip(), result
    stored = [r["id"] for r in results if r["ok"]]
    assert stored
    for pk in stored:  # the worker's pipeline, run here: same code, no queue needed
        ingestion.document_ingest(document_id=pk, worker="fuzz")
    for doc in Document.objects.filter(pk__in=stored):
        assert doc.status in (Document.Status.INDEXED, Document.Status.FAILED), doc.status
        if doc.status == Document.Status.FAILED:
            assert doc.failure_reason.strip().endswith("."), doc.failure_reason
        else:
            assert doc.chunk_count == len(helpers.point_ids(doc.pk)) > 0
