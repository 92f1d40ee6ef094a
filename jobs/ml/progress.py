"""How ML code reports progress without knowing who listens.

A worker passes a sink that publishes to Redis and the database (`jobs.reporter`); a script
or a test passes `NullSink` or its own recorder.
"""

from __future__ import annotations

from typing import Protocol


class JobCancelled(Exception):
    """Raised from a sink when the user asked to cancel; the work stops at the next check."""


class ProgressSink(Protocol):
    def progress(self, fraction: float, message: str = "") -> None:
        """Report overall progress in 0..1 with a short human sentence. May raise JobCancelled."""

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        """Record the metrics of a finished epoch (1-based)."""

    def set_device(self, device: str) -> None:
        """Say which device (CPU model or GPU name) the work runs on."""


class NullSink:
    """A sink that records nothing: for scripts and notebooks."""

    def progress(self, fraction: float, message: str = "") -> None:
        pass

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        pass

    def set_device(self, device: str) -> None:
        pass
