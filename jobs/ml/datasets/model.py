"""The values ingestion hands back: limits going in, items and a summary coming out.

Plain dataclasses and one exception, so the Django side can depend on them without pulling
in Pillow or numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("classification", "captions")
SPLITS = ("train", "val", "test")


class UnusableDataset(Exception):
    """The whole archive cannot become a dataset.

    str(exc) is one or two plain sentences for the user, naming the offending entry where
    there is one, e.g. "The archive contains a path that leaves its folder (../../etc/passwd);
    it was rejected for safety."
    """


class LooksLikeClassification(UnusableDataset):
    """A captions upload without a captions file whose images sit in class folders.

    `classes` names the folders, so the caller can offer to read the same archive as a
    classification dataset instead of asking for the upload again.
    """

    def __init__(self, message: str, classes: list[str]):
        super().__init__(message)
        self.classes = classes


@dataclass(frozen=True)
class IngestLimits:
    """Bounds that keep a hostile or absurd upload from exhausting the worker."""

    max_inflated_bytes: int = 20 * 1024**3  # total uncompressed size of accepted entries
    max_files: int = 1_000_000  # entries in the archive
    max_ratio: float = 100.0  # compression ratio beyond which a big archive/entry is a zip bomb
    max_file_bytes: int = 512 * 1024**2  # one member
    max_pixels: int = 60_000_000  # one image (width*height), checked BEFORE decoding
    thumb_size: int = 128  # longest side of a thumbnail, px
    threads: int = 4  # decode/thumbnail threads


DEFAULT_LIMITS = IngestLimits()


@dataclass
class Item:
    """One stored image, ready to become a database row."""

    path: str  # where the stored image lives, POSIX, relative to dataset_dir / "images"
    original: str  # the member's path inside the archive (decoded name)
    label: str  # class name for classification; "" for captions
    split: str | None  # "train" | "val" | "test" from the dataset's own split files; None = later
    width: int
    height: int
    mode: str  # Pillow mode of the ORIGINAL image (e.g. "RGB", "L", "P", "RGBA", "CMYK", "I;16")
    format: str  # Pillow format of the original (e.g. "JPEG", "PNG", "WEBP")
    checksum: str  # sha256 hex of the original member bytes
    thumbnail: str  # relative to dataset_dir / "thumbs" (a .jpg)
    captions: list[str] = field(default_factory=list)  # raw captions (captions datasets only)


@dataclass
class IngestResult:
    """What the whole archive became; the items themselves went out through `on_items`."""

    num_items: int
    classes: list[dict]  # [{"name": str, "count": int}] sorted by name; [] for captions
    skipped: list[dict]  # [{"path": str, "reason": str}] one per skipped member / caption line
    content_hash: str  # sha256 hex, see hashing.content_hash
    num_captions: int
    stats: dict  # see stats.ImageStats.summary and captions.CaptionStats.summary
    has_split_files: bool  # Flickr8k split files were present and used
