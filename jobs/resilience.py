"""Riding out a database blip in a worker: retry with backoff, on a fresh connection.

A worker must not lose a job because the database did not answer for a few seconds (a
PostgreSQL restart or failover, a SQLite file locked past its busy timeout). The writes that
decide a job's fate, its claim and its outcome, go through `retry_db`; progress that the next
report repeats anyway is simply skipped when the database is away.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from django.db import InterfaceError, OperationalError, connection

log = logging.getLogger(__name__)

# What a database outage looks like from Django: refused or dropped connections, timeouts,
# "database is locked". Not IntegrityError and the like: retrying a wrong query helps nobody.
DB_ERRORS = (OperationalError, InterfaceError)
# Waits between attempts (seconds): about a minute in all before giving up.
RETRY_DELAYS = (0.5, 1, 2, 4, 8, 15, 30)

T = TypeVar("T")


def reset_connection() -> None:
    """Drop a connection that may be broken, so the next query opens a new one."""
    if not connection.in_atomic_block:
        try:
            connection.close()
        except DB_ERRORS:
            pass


def retry_db(action: Callable[[], T], what: str, delays: Sequence[float] | None = None,
             sleep: Callable[[float], None] = time.sleep) -> T:
    """`action()`, tried again after each of `delays` (RETRY_DELAYS) while the database errs; the last
    error is raised."""
    for delay in (*(RETRY_DELAYS if delays is None else delays), None):
        try:
            return action()
        except DB_ERRORS as exc:
            if delay is None:
                raise
            log.warning("The database did not answer while %s (%s: %s); trying again in %s s.",
                        what, type(exc).__name__, exc, delay)
            reset_connection()
            sleep(delay)
    raise AssertionError("unreachable")
