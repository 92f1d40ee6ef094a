"""A ProgressSink that records what ML code reports, and can play a user who cancels."""

from __future__ import annotations

from jobs.ml.progress import JobCancelled


class RecordingSink:
    """Records progress, epochs and the device. Raises JobCancelled at the `cancel_at`-th progress
    report, or at the first message containing `cancel_on`."""

    def __init__(self, cancel_at: int | None = None, cancel_on: str | None = None):
        self.fractions: list[float] = []
        self.messages: list[str] = []
        self.epochs: list[tuple[int, dict]] = []
        self.device: str | None = None
        self.cancel_at, self.cancel_on = cancel_at, cancel_on

    def progress(self, fraction, message=""):
        self.fractions.append(fraction)
        self.messages.append(message)
        if self.cancel_at is not None and len(self.fractions) >= self.cancel_at:
            raise JobCancelled()
        if self.cancel_on is not None and self.cancel_on in message:
            raise JobCancelled()

    def epoch_end(self, epoch, metrics):
        self.epochs.append((epoch, metrics))

    def set_device(self, device):
        self.device = device

    def extracted(self) -> bool:
        """Whether features were computed (not found in the cache)."""
        return any(m.startswith("Extracting features") for m in self.messages)
