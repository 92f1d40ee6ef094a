"""Writing images and thumbnails under the dataset folder, and nowhere else.

Stored paths keep the archive's own (NFC) names, so people recognise their files, with three
adjustments: the extension follows what is stored (a BMP becomes "x.png"), names too long for
a filesystem are shortened, and clashes get "-1", "-2" (compared case-insensitively, so a
dataset copies safely to macOS or Windows). Every target is checked to lie inside the folder.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path, PurePosixPath

from PIL import Image

from jobs.ml.datasets.archive import MemberError

MAX_NAME_BYTES = 200  # filesystems allow 255 bytes a name; room for "-12" and ".jpg"
THUMB_SUFFIX = ".jpg"

# Filesystem refusals that concern one name, not the machine (a full disk must still fail).
_NAME_ERRORS = {errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.EILSEQ, errno.EINVAL}


def _fit(name: str) -> str:
    """Shorten a path component to MAX_NAME_BYTES of UTF-8, keeping its extension."""
    if len(name.encode("utf-8")) <= MAX_NAME_BYTES:
        return name
    path = PurePosixPath(name)
    suffix = path.suffix if len(path.suffix) < 16 else ""
    stem = name[: len(name) - len(suffix)]
    while len((stem + suffix).encode("utf-8")) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return stem + suffix


def with_suffix(name: str, suffixes: tuple[str, ...]) -> str:
    """The file name with an extension that fits the stored bytes (suffixes[0] is canonical).

    A fitting extension stays as written ("a.JPG"); another image extension is replaced
    ("a.bmp" -> "a.png"); anything else gets one appended ("scan.001" -> "scan.001.png").
    """
    suffix = PurePosixPath(name).suffix
    if suffix.lower() in suffixes:
        return name
    if suffix and suffix.lower() in Image.registered_extensions():
        return name[: -len(suffix)] + suffixes[0]
    return name + suffixes[0]


class Storage:
    """Allocates unique stored paths and writes images and thumbnails."""

    def __init__(self, dataset_dir: Path):
        self.images = (Path(dataset_dir) / "images").absolute()
        self.thumbs = (Path(dataset_dir) / "thumbs").absolute()
        self._taken: set[str] = set()  # casefolded stored paths
        self._folders: set[Path] = set()  # folders known to exist: one mkdir each, not one per file

    def _unique(self, folder: tuple[str, ...], name: str) -> str:
        stem, suffix = os.path.splitext(name)
        candidate, n = name, 0
        while "/".join((*folder, candidate)).casefold() in self._taken:
            n += 1
            candidate = f"{stem}-{n}{suffix}"
        path = "/".join((*folder, candidate))
        self._taken.add(path.casefold())
        return path

    def _target(self, root: Path, rel: str) -> Path:
        """root / rel, refusing anything that would resolve outside root."""
        target = Path(os.path.normpath(root / rel))
        if root not in target.parents:
            raise RuntimeError(f"refusing to write outside {root}: {rel!r}")
        return target

    def store(self, parts: tuple[str, ...], suffixes: tuple[str, ...], image: bytes,
              thumbnail: bytes) -> tuple[str, str]:
        """Write one image and its thumbnail; (image path, thumbnail path), each relative to its root.

        MemberError when the filesystem refuses this one name (a file where the archive also has
        a folder of that name, say); other errors (a full disk) propagate.
        """
        folder = tuple(_fit(p) for p in parts[:-1])
        name = _fit(with_suffix(parts[-1], suffixes))
        while True:
            rel = self._unique(folder, name)
            target = self._target(self.images, rel)
            try:
                self._make_parent(target)
                with open(target, "xb") as fh:
                    fh.write(image)
                break
            except (FileExistsError, IsADirectoryError):
                if target.parent.is_dir():
                    continue  # something from before, or a folder, has this name: take the next one
                raise MemberError(f"could not be stored as {rel} (a file and a folder share the name)") from None
            except OSError as exc:
                _raise_for_name(rel, exc)
        thumb = rel + THUMB_SUFFIX
        target = self._target(self.thumbs, thumb)
        try:
            self._make_parent(target)
            target.write_bytes(thumbnail)
        except OSError as exc:
            self._target(self.images, rel).unlink()
            _raise_for_name(thumb, exc)
        return rel, thumb

    def _make_parent(self, target: Path) -> None:
        if target.parent not in self._folders:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._folders.add(target.parent)


def _raise_for_name(rel: str, exc: OSError) -> None:
    """MemberError for a refusal about this one name; the original error for anything else."""
    if exc.errno in _NAME_ERRORS:
        raise MemberError(f"could not be stored as {rel} ({exc.strerror})") from exc
    raise exc
