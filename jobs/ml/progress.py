"""How ML code reports progress without knowing who listens.

A worker passes a sink that publishes to Redis and the database (`jobs.reporter`); a script
or a test passes `NullSink` or its own recorder.
"""

from __future__ import annotations

import time
from typing import Protocol


def format_duration(seconds: float) -> str:
    """'45 s', '1 min 20 s', '2 h 5 min': rounded the way a person reads a countdown."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60} min"


class Countdown:
    """" · about 2 min left" from the pace so far, for a loop of `total` steps.

    The first step is left out of the pace: it pays for tracing and for filling caches.
    """

    def __init__(self, total: int):
        self.total = total
        self._first_done: float | None = None

    def __call__(self, done: int) -> str:
        """The suffix for a progress message after `done` steps; "" until there is a pace to go by."""
        if self._first_done is None:
            self._first_done = time.perf_counter()
            return ""
        if done < 3:
            return ""
        per_step = (time.perf_counter() - self._first_done) / (done - 1)
        return f" · about {format_duration(per_step * (self.total - done))} left"


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


class ScaledSink:
    """Passes progress on mapped into [start, end] of another sink: one step of a longer job.

    A caption job first extracts features, then trains; each step reports 0..1 as if it were
    the whole job, and the bar moves through its share.
    """

    def __init__(self, sink: ProgressSink, start: float, end: float):
        self.sink, self.start, self.end = sink, start, end

    def progress(self, fraction: float, message: str = "") -> None:
        self.sink.progress(self.start + (self.end - self.start) * min(1.0, max(0.0, fraction)), message)

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        self.sink.epoch_end(epoch, metrics)

    def set_device(self, device: str) -> None:
        self.sink.set_device(device)


class FileSink:
    """Progress as JSON lines appended to a file: how a sandboxed child (`jobs.sandbox`) reports to
    its parent, which passes each line on to the job's own sink. Epoch metrics and the device are
    not sent: the child only extracts features."""

    def __init__(self, path: str):
        self.path = path

    def progress(self, fraction: float, message: str = "") -> None:
        import json

        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"fraction": fraction, "message": message}) + "\n")

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        pass

    def set_device(self, device: str) -> None:
        pass
