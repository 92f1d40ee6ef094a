"""Builders for the archives the dataset tests upload: good ones and hostile ones.

Everything is generated in the test's temporary folder; nothing is downloaded.
"""

from __future__ import annotations

import io
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def image_bytes(fmt: str = "PNG", size: int = 24, mode: str = "RGB", seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGB")
    if mode != "RGB":
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def classification_members(classes=("cat", "dog"), per_class: int = 4, top: str = "pets") -> dict[str, bytes]:
    members = {}
    for c, name in enumerate(classes):
        for i in range(per_class):
            members[f"{top}/{name}/{name}_{i}.png"] = image_bytes(seed=c * 100 + i)
    return members


def classification_zip(path: Path, **kwargs) -> Path:
    return write_zip(path, classification_members(**kwargs))


def with_symlink(path: Path, members: dict[str, bytes], link: str, target: str) -> Path:
    write_zip(path, members)
    with zipfile.ZipFile(path, "a") as archive:
        info = zipfile.ZipInfo(link)
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, target)
    return path


def zip_bomb(path: Path, inflated_bytes: int) -> Path:
    """One member of zeros that inflates to `inflated_bytes` (compresses about 1000:1)."""
    block = bytes(8 * 1024 * 1024)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb/a/ok.png", image_bytes())
        archive.writestr("bomb/b/ok.png", image_bytes(seed=1))
        with archive.open("bomb/a/zeros.png", "w", force_zip64=True) as member:
            written = 0
            while written < inflated_bytes:
                member.write(block)
                written += len(block)
    return path


def giant_png(width: int = 40_000, height: int = 25_000) -> bytes:
    """A PNG whose header claims width x height pixels, without the pixels (a billion by default)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


def flickr_members(n: int = 4, missing: tuple[str, ...] = (), encoding: str = "utf-8") -> dict[str, bytes]:
    members, lines = {}, []
    for i in range(n):
        name = f"img{i}.jpg"
        members[f"flickr/Images/{name}"] = image_bytes("JPEG", seed=i)
        lines += [f"{name}#{k}\ta caption number {k} for picture {i}" for k in range(5)]
    lines += [f"{name}#0\ta caption for a picture that is not there" for name in missing]
    members["flickr/Flickr8k.token.txt"] = "\n".join(lines).encode(encoding)
    return members
