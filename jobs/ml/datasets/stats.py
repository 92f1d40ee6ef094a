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
            "typical_side": typical_side(self.widths, self.heights),
            "modes": dict(sorted(self.modes.items())),
            "formats": dict(sorted(self.formats.items())),
            "total_bytes": self.total_bytes,  # stored images on disk, thumbnails not included
            "thumbnail_bytes": self.thumb_bytes,
        }


def typical_side(widths: Sequence[int], heights: Sequence[int]) -> int | None:
    """The median of each image's longer side: the square a model can take without throwing detail away.

    The Train form and the API default a model's image size to it (capped by the architecture):
    enlarging 64-pixel pictures to 128 adds no information and costs four times the compute.
    """
    if len(widths) == 0:
        return None
    return int(np.median(np.maximum(np.asarray(widths), np.asarray(heights))))


# --- colour: is it what tells the classes apart? -----------------------------------------------

COLOURFUL_CHROMA = 0.06  # mean chroma (max - min channel, 0..1) above which an image counts as in colour
SEPARATES = 0.8  # nearest-class-centre accuracy from which a feature set "tells the classes apart"
GRAY_GAP = 0.25  # ... and gray levels must do this much worse for colour to be what separates them
CHUNK = 4096  # images compared with the class centres at a time


class ColourStats:
    """Per-image colour and gray-level summaries by class, to say whether colour is what separates them.

    Each image gives five numbers (`images.colour_features`): its mean brightness and contrast (what
    a grayscale model still sees), and its mean red-green and yellow-blue opponent colour and chroma
    (what only a colour model sees). 24 bytes an image, like ImageStats's sizes. At the end, a
    nearest-class-centre classifier on each set says how well it alone tells the classes apart: when
    colour does and gray levels do not, the Train form warns against grayscale input.
    """

    def __init__(self) -> None:
        self.names: dict[str, int] = {}
        self.labels = array("i")
        self.rows = array("f")

    def add(self, label: str, features: Sequence[float] | None) -> None:
        if features is None or len(features) != 5:
            return
        self.labels.append(self.names.setdefault(label, len(self.names)))
        self.rows.extend(float(v) for v in features)

    def summary(self) -> dict:
        """{"colourful_share", "separability": {"colour", "gray", "chance"}, "differs_by_colour"}, or {}."""
        if not self.labels:
            return {}
        rows = np.frombuffer(self.rows, dtype=np.float32).reshape(-1, 5).astype(np.float64)
        labels = np.frombuffer(self.labels, dtype=np.int32)
        chance = float(np.bincount(labels).max() / len(labels))
        several = len(self.names) > 1
        gray = centroid_accuracy(rows[:, :2], labels) if several else chance
        colour = centroid_accuracy(rows[:, 2:4], labels) if several else chance
        return {
            "colourful_share": round(float(np.mean(rows[:, 4] > COLOURFUL_CHROMA)), 3),
            "separability": {"colour": round(colour, 3), "gray": round(gray, 3), "chance": round(chance, 3)},
            "differs_by_colour": bool(colour >= SEPARATES and colour - gray >= GRAY_GAP),
        }


def centroid_accuracy(features: np.ndarray, labels: np.ndarray) -> float:
    """How often an image is nearest its own class's mean, each feature scaled to unit spread.

    A feature with no spread (colour in a grayscale dataset) carries nothing and is dropped; with
    none left every image goes to the largest class, so the answer is chance.
    """
    spread = features.std(axis=0)
    useful = spread > 1e-6
    counts = np.bincount(labels)
    if not useful.any():
        return float(counts.max() / len(labels))
    scaled = features[:, useful] / spread[useful]
    classes = np.flatnonzero(counts)
    centres = np.stack([scaled[labels == k].mean(axis=0) for k in classes])
    right = 0
    for start in range(0, len(scaled), CHUNK):  # bounded memory with many images and many classes
        part = scaled[start:start + CHUNK]
        distances = ((part[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        right += int(np.sum(classes[distances.argmin(axis=1)] == labels[start:start + CHUNK]))
    return right / len(labels)
