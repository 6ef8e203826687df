"""Settings of synced folders (README "Ingestion", "Synced folders (Sources)"). Read here
and imported by settings.py, which is at its line limit."""

from __future__ import annotations

import os
from pathlib import Path

from apps.config.env import Env

env = Env()


def _absolute(value: str) -> None:
    if not os.path.isabs(value):
        raise ValueError(f"{value!r} must be an absolute directory, e.g. /mnt/shares")


_VAR = Path(env.str("VAR_DIR", default=str(Path(__file__).resolve().parents[2] / "var")))
# The directories a Source's folder must lie in (a mounted share, say). A knowledge admin
# can attach any folder below one of them, and nothing else on the server.
SOURCE_ROOTS = env.items("SOURCE_ROOTS", _absolute, default=[str(_VAR / "sources")])
# How often Celery beat looks for sources that are due (each has its own interval).
SOURCE_SYNC_CHECK_SECONDS = env.integer(
    "SOURCE_SYNC_CHECK_SECONDS", default=60, low=10, want="at least 10 seconds"
)

__all__ = ["SOURCE_ROOTS", "SOURCE_SYNC_CHECK_SECONDS"]
