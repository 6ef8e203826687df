"""Where an evaluation's throw-away rows live while it runs: uploads in a temporary
MEDIA_ROOT, points in a temporary vector store owner (unless the configured store is
asked for), and the rows of its Environment removed at the end whatever happened.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TypeVar

from django.test.utils import override_settings

from apps.retrieval.tempstore import temporary_owner
from apps.search.evaluation.environment import Environment

E = TypeVar("E", bound=Environment)


@contextmanager
def sandboxed(
    env: E,
    *,
    warn: Callable[[str], object],
    temp_store: bool = True,
    overrides: dict[str, object] | None = None,
) -> Iterator[E]:
    """Run the block with `env` in throw-away storage; clean `env` up afterwards. A failing
    clean-up is reported through `warn`, not raised: the results are out already."""
    media = Path(tempfile.mkdtemp(prefix="enclave-eval-media-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, media, True)
        stack.enter_context(override_settings(**(overrides or {}), MEDIA_ROOT=str(media)))
        if temp_store:
            stack.enter_context(temporary_owner())
        stack.callback(_cleanup, env, warn)
        yield env


def _cleanup(env: Environment, warn: Callable[[str], object]) -> None:
    try:
        env.cleanup()
    except Exception as err:  # the results are printed; say what is left behind
        warn(f"clean-up failed ({err}); rows named {env.tag}-* may be left in the database")
