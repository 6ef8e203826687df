"""Saving an answer when the database connection died while it streamed.

A restart or failover during the seconds a stream lasts kills the connection the answer
was to be saved on. The save is one transaction, so the failed try committed nothing:
it is run once more on a fresh connection, and the answer and its audit events are still
written together and the stream ends normally.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError, connection

log = logging.getLogger(__name__)


def once_more_if_disconnected(save: Callable[[], None]) -> None:
    """Run `save` (one transaction); if the connection was lost, once more on a new one."""
    try:
        save()
    except (OperationalError, InterfaceError):
        if connection.in_atomic_block:
            raise  # a caller's transaction is lost with the connection; not ours to redo
        log.warning("database connection lost while streaming; saving the answer again")
        connection.close()
        save()
