"""Where the labels and captions are: class folders, and the caption files of a captions set.

Layouts are read from member names alone, before any image is decoded, so an archive whose
shape cannot become a dataset fails in seconds with nothing written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from jobs.ml.datasets.archive import Member

FLICKR_TOKENS = "flickr8k.token.txt"
FLICKR_SPLITS = {
    "flickr_8k.trainimages.txt": "train",
    "flickr_8k.devimages.txt": "val",
    "flickr_8k.testimages.txt": "test",
}
CAPTION_TABLES = ("captions.csv", "captions.txt")


def enclosing_depth(paths: Iterable[tuple[str, ...]]) -> int:
    """How many leading folders wrap the class folders (0 when the classes are at the top).

    Strip while every file shares the same first component and some file would still sit in
    a class folder below it: "data/cats/a.jpg, data/dogs/b.jpg" strips "data", while
    "cats/a.jpg, cats/b.jpg" keeps "cats" (a one-class dataset, reported as such).
    """
    paths = list(paths)
    depth = 0
    while paths and (all(len(p) - depth >= 2 for p in paths)
                     and len({p[depth] for p in paths}) == 1
                     and any(len(p) - depth >= 3 for p in paths)):
        depth += 1
    return depth


def class_of(parts: tuple[str, ...], depth: int) -> tuple[str, tuple[str, ...]] | None:
    """(label, path below the enclosing folders) or None for a file outside any class folder.

    The label is the first remaining folder; deeper subfolders belong to that class.
    """
    rel = parts[depth:]
    return (rel[0], rel) if len(rel) >= 2 else None


def match_key(parts: tuple[str, ...], keys: dict | set) -> str | None:
    """The caption key naming this image: its longest path suffix found among the keys.

    Flickr8k names images by file name, a captions.csv may give "images/a.jpg" or "a.jpg":
    trying "x/images/a.jpg", then "images/a.jpg", then "a.jpg" matches all of them without
    knowing which folder the caption file counted from.
    """
    for start in range(len(parts)):
        key = "/".join(parts[start:])
        if key in keys:
            return key
    return None


@dataclass
class CaptionSources:
    """The caption files found in a captions archive."""

    tokens: Member | None = None  # Flickr8k.token.txt
    splits: dict[str, Member] = field(default_factory=dict)  # "train" | "val" | "test" -> split file
    table: Member | None = None  # captions.csv / captions.txt
    unused: list[Member] = field(default_factory=list)  # further caption files, not read

    @property
    def used(self) -> Member | None:
        """The one file the captions come from: Flickr8k's when both kinds are present."""
        return self.tokens or self.table

    def members(self) -> set[str]:
        """Names of every caption-related file, so none of them is treated as an image."""
        found = [self.tokens, self.table, *self.splits.values(), *self.unused]
        return {m.name for m in found if m is not None}


def find_caption_sources(members: Iterable[Member]) -> CaptionSources:
    """Locate caption and split files anywhere in the archive by file name (any case).

    With several candidates the shallowest wins, and the rest are reported as unused.
    """
    tokens, tables, splits = [], [], {}
    for m in members:
        base = m.parts[-1].lower()
        if base == FLICKR_TOKENS:
            tokens.append(m)
        elif base in CAPTION_TABLES:
            tables.append(m)
        elif base in FLICKR_SPLITS:
            splits.setdefault(FLICKR_SPLITS[base], []).append(m)
    shallow = sorted(tokens, key=_shallow) + sorted(tables, key=_shallow)
    sources = CaptionSources(unused=shallow[1:])
    if tokens:
        sources.tokens = shallow[0]
        sources.splits = {split: min(found, key=_shallow) for split, found in splits.items()}
        sources.unused += [m for found in splits.values() for m in found if m not in sources.splits.values()]
    elif tables:
        sources.table = shallow[0]
        sources.unused += [m for found in splits.values() for m in found]
    return sources


def _shallow(m: Member) -> tuple[int, str]:
    return len(m.parts), m.name
