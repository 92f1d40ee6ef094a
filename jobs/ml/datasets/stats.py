"""Dataset statistics gathered while ingesting, in constant memory per item.

Sizes are kept as two compact integer arrays (8 bytes an image) and summarised as ~10-bin
histograms at the end: enough for the dataset page to show the spread without storing items.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Sequence

import numpy as np

HISTOGRAM_BINS = 10


def histogram(values: Sequence[int], bins: int = HISTOGRAM_BINS) -> dict:
    """{"bins": edges, "counts": counts} with integer edges; bin i is [edges[i], edges[i+1]).

    Integer widths keep the labels readable ("100-199 px", "8-9 words"); with few distinct
    values each value gets its own bin.
    """
    if len(values) == 0:
        return {"bins": [], "counts": []}
    a = np.asarray(values, dtype=np.int64)
    lo, hi = int(a.min()), int(a.max())
    width = max(1, math.ceil((hi - lo + 1) / bins))
    edges = list(range(lo, hi + width + 1, width))
    counts, _ = np.histogram(a, bins=np.asarray(edges) - 0.5)
    return {"bins": edges, "counts": [int(c) for c in counts]}


class ImageStats:
    """Sizes, modes, formats and stored bytes of the images kept."""

    def __init__(self) -> None:
        self.widths = array("l")
        self.heights = array("l")
        self.modes: Counter[str] = Counter()
        self.formats: Counter[str] = Counter()
        self.total_bytes = 0
        self.thumb_bytes = 0

    def add(self, width: int, height: int, mode: str, fmt: str, stored_bytes: int, thumb_bytes: int) -> None:
        self.widths.append(width)
        self.heights.append(height)
        self.modes[mode] += 1
        self.formats[fmt] += 1
        self.total_bytes += stored_bytes
        self.thumb_bytes += thumb_bytes

    def summary(self) -> dict:
        return {
            "image_sizes": {"widths": histogram(self.widths), "heights": histogram(self.heights)},
            "modes": dict(sorted(self.modes.items())),
            "formats": dict(sorted(self.formats.items())),
            "total_bytes": self.total_bytes,  # stored images on disk, thumbnails not included
            "thumbnail_bytes": self.thumb_bytes,
        }
