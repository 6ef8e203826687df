"""`evaluate_retrieval --adapt`: the adapted embedder measured end to end on a data set.

After the base run, the embedder is adapted on the evaluation's own indexed corpus (the
main collection: a split's excluded passages are not in it) with the recipe of
`manage.py adapt_embedder`. Pseudo-queries that match a judged question are dropped, so
the model is scored only on questions it was not trained on. Then the corpus is ingested
again, embedded by the adapted model, into a fresh store, and every split and mode is
scored again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from django.test.utils import override_settings

from apps.retrieval import embeddings
from apps.retrieval.adapt import TrainReport, pseudo_pairs, train
from apps.search.adaptation import stored_passages
from apps.search.evaluation.environment import Environment


def _forget_models() -> None:
    # Models are cached per path; dropping them frees the memory of the one not in use.
    for cached in (getattr(embeddings, "_load", None), embeddings.get_model):
        clear = getattr(cached, "cache_clear", None)
        if clear is not None:
            clear()


@contextmanager
def adapted_embedder(path: Path) -> Iterator[None]:
    """EMBEDDING_MODEL points at `path` inside the block; no model loaded before it is
    used inside, nor the adapted one after."""
    with override_settings(EMBEDDING_MODEL=str(path)):
        _forget_models()
        try:
            yield
        finally:
            _forget_models()


def train_on(
    env: Environment,
    *,
    exclude: Sequence[str],
    out: Path,
    max_minutes: float,
    max_pairs: int,
    log: Callable[[str], object],
) -> TrainReport:
    passages = list(stored_passages([env.collections["main"].pk]))
    pairs = pseudo_pairs(passages, exclude=exclude, max_pairs=max_pairs)
    log(
        f"adapting the embedder on {len(passages)} indexed passages: {len(pairs)} pairs "
        f"({len(exclude)} judged questions excluded), at most {max_minutes:g} minutes"
    )
    return train(
        pairs,
        base_path=embeddings.model_path(),
        out_dir=out,
        max_seconds=max_minutes * 60,
        log=log,
    )
