"""manage.py vectorstore_snapshot. qdrant-client's local mode has no snapshots (it raises
NotImplementedError), so here the command is proven to refuse clearly; against a real
server (QDRANT_URL set) it creates, lists, downloads (checksum checked) and prunes."""

from __future__ import annotations

import uuid

import pytest
from django.core.management import CommandError, call_command

from apps.retrieval.store.protocol import StoreError
from apps.retrieval.store.server import ServerStore


def test_without_a_qdrant_server_the_command_says_what_to_do_instead(settings):
    settings.QDRANT_URL = ""
    with pytest.raises(CommandError, match="VECTOR_DATA_DIR"):
        call_command("vectorstore_snapshot")


def test_a_local_qdrant_refuses_snapshots_as_a_store_error():
    store = ServerStore(location=":memory:", collection="snap")
    store.ensure_collection(dense_size=4)
    with pytest.raises(StoreError, match="not supported"):
        store.snapshot_create()
    assert store.snapshot_list() == []
    with pytest.raises(StoreError, match="no snapshot files"):
        store.snapshot_url("x.snapshot")


def test_an_unreachable_server_is_a_command_error(settings):
    from tests.support.llm import free_port

    settings.QDRANT_URL = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(CommandError, match="did not answer"):
        call_command("vectorstore_snapshot", "--list")


def test_snapshot_create_download_and_prune_against_a_real_server(settings, tmp_path, capsys):
    if not settings.QDRANT_URL:
        reason = "QDRANT_URL is not set: snapshots need a real Qdrant server"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    settings.QDRANT_COLLECTION = f"enclave_snap_{uuid.uuid4().hex[:10]}"
    store = ServerStore(
        url=settings.QDRANT_URL,
        api_key=settings.QDRANT_API_KEY,
        collection=settings.QDRANT_COLLECTION,
    )
    store.ensure_collection(dense_size=4)
    try:
        call_command("vectorstore_snapshot", "--download", str(tmp_path))
        call_command("vectorstore_snapshot", "--keep", "1")
        names = [s["name"] for s in store.snapshot_list()]
        assert len(names) == 1
        files = list(tmp_path.glob("*.snapshot"))
        assert len(files) == 1 and files[0].stat().st_size > 0
        assert "SHA-256 checked" in capsys.readouterr().out
        call_command("vectorstore_snapshot", "--delete", names[0])
        assert store.snapshot_list() == []
    finally:
        store._get_client().delete_collection(store.collection)
        store.close()
