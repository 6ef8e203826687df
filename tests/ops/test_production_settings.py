"""The production profile's settings: a wrong value stops start-up naming the variable, and
a new server collection is laid out as configured (sharding, on-disk parts, HNSW, int8)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from apps.retrieval.store.server import ServerStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("QDRANT_QUANTIZATION", "int4"),
        ("QDRANT_HNSW_M", "2"),
        ("QDRANT_SHARDS", "0"),
        ("QDRANT_URL", "qdrant:6333"),
        ("METRICS_ALLOWED_IPS", "10.0.0.0/8,not-an-address"),
        ("METRICS_TOKEN", "short"),
        ("READYZ_TIMEOUT_SECONDS", "0"),
    ],
)
def test_a_wrong_production_setting_fails_at_start_naming_it(variable, value):
    env = {**os.environ, variable: value, "DJANGO_SETTINGS_MODULE": "apps.config.settings"}
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert f"ImproperlyConfigured: {variable}" in done.stderr, done.stderr[-2000:]


def _layout(store: ServerStore) -> object:
    store.ensure_collection(dense_size=8)
    return store._get_client().get_collection(store.collection).config


def test_on_disk_vectors_reach_the_dense_and_the_sparse_index():
    # qdrant-client's local mode keeps the vector parameters (not HNSW or quantization).
    store = ServerStore(location=":memory:", collection="layout", on_disk_vectors=True)
    params = _layout(store).params
    assert params.vectors["dense"].on_disk is True
    assert params.sparse_vectors["bm25"].index.on_disk is True


def test_a_real_server_collection_gets_the_whole_production_layout(settings):
    if not settings.QDRANT_URL:
        reason = "QDRANT_URL is not set: the full layout is only visible on a real Qdrant server"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    store = ServerStore(
        url=settings.QDRANT_URL,
        api_key=settings.QDRANT_API_KEY,
        collection=f"enclave_layout_{uuid.uuid4().hex[:10]}",
        shards=2,
        replication=1,
        on_disk_payload=True,
        on_disk_vectors=True,
        quantization="int8",
        hnsw_m=24,
        hnsw_ef_construct=150,
    )
    try:
        config = _layout(store)
        assert config.params.shard_number == 2
        assert config.params.on_disk_payload is True
        assert config.params.vectors["dense"].on_disk is True
        assert (config.hnsw_config.m, config.hnsw_config.ef_construct) == (24, 150)
        assert config.quantization_config.scalar.type == "int8"
    finally:
        store._get_client().delete_collection(store.collection)
        store.close()
