"""Safe zip reading: refuse hostile archives before anything is written, read members bounded.

An upload is untrusted. Everything that could write outside the dataset folder (absolute
paths, `..`, symlinks) or exhaust the worker (entry counts, declared sizes, zip bombs) fails
the whole archive here, from the central directory alone, before a single byte is inflated.
Reading then caps every member again, because declared sizes are only claims.
"""

from __future__ import annotations

import re
import stat
import struct
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from jobs.ml.datasets.model import IngestLimits, UnusableDataset

# Bomb checks only bother with sizes that could hurt: small archives may compress well.
BOMB_MIN_TOTAL = 100 * 1024**2
BOMB_MIN_MEMBER = 10 * 1024**2

UTF8_FLAG = 0x800
ENCRYPTED_FLAG = 0x1
READ_CHUNK = 1024**2
HEAD_BYTES = 64 * 1024

# Files that operating systems leave behind; never part of a dataset and never reported.
SYSTEM_FILES = {"thumbs.db", "desktop.ini"}
SYSTEM_FOLDERS = {"__MACOSX"}

_DRIVE = re.compile(r"^[A-Za-z]:")

# What people upload by mistake, by magic bytes, so the error can say what it is.
_OTHER_FORMATS = (
    (b"\x1f\x8b", "a gzip file (.gz or .tar.gz)"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"BZh", "a bzip2 file"),
    (b"\xfd7zXZ\x00", "an xz file"),
)


class MemberError(Exception):
    """One member cannot be read; str(exc) is the short reason listed among skipped files."""


@dataclass(frozen=True)
class Member:
    """An accepted archive entry: its zip record and its cleaned, decoded name."""

    info: zipfile.ZipInfo
    name: str  # NFC, "/"-separated, no empty or "." components
    parts: tuple[str, ...]


def human_bytes(n: float) -> str:
    """1536 -> "1.5 KB": sizes in messages people read."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _what_else(path: Path) -> str | None:
    """Name the format of a non-zip upload when it is a common archive type."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    for magic, name in _OTHER_FORMATS:
        if head.startswith(magic):
            return name
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "a tar archive"
    return None


def declared_entry_count(path: Path) -> int | None:
    """The entry count from the end-of-central-directory record, or None if unreadable.

    zipfile builds a ZipInfo for every entry when it opens an archive: a few hundred bytes each,
    so a small archive declaring millions of entries would exhaust memory before any check of
    ours ran. Reading the count first keeps `max_files` a real bound.
    """
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(max(0, size - (22 + 65535)))  # the record, then at most a 64 KiB comment
        tail = fh.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < 22:
            return None
        (entries,) = struct.unpack("<10xH", tail[at:at + 12])
        if entries != 0xFFFF:
            return entries
        # Zip64: a locator just before the classic record points at the real record.
        locator = tail[at - 20:at] if at >= 20 else b""
        if locator[:4] != b"PK\x06\x07":
            return None
        (offset,) = struct.unpack("<8xQ4x", locator)
        fh.seek(offset)
        record = fh.read(56)
        if len(record) < 56 or record[:4] != b"PK\x06\x06":
            return None
        (entries,) = struct.unpack("<32xQ16x", record)
        return entries


def open_archive(path: Path, limits: IngestLimits) -> zipfile.ZipFile:
    """Open the upload as a zip, or say in a sentence why it is not one."""
    other = _what_else(path)
    if other:
        raise UnusableDataset(f"This file is not a zip archive, it is {other}: please upload a .zip file.")
    try:
        count = declared_entry_count(path)
        if count is not None and count > limits.max_files:
            raise UnusableDataset(_too_many(count, limits))
        return zipfile.ZipFile(path)
    except (FileNotFoundError, PermissionError):
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, struct.error,
            UnicodeDecodeError, NotImplementedError, OSError) as exc:
        detail = str(exc).rstrip(".") or type(exc).__name__
        raise UnusableDataset(f"This file is not a zip archive, or it is damaged: {detail}.") from exc


def _too_many(count: int, limits: IngestLimits) -> str:
    return f"The archive holds {count:,} entries, more than the limit of {limits.max_files:,}."


def decode_name(info: zipfile.ZipInfo) -> str:
    """The member name as its author meant it: UTF-8 even without the flag, NFC, "/" separators.

    Without the UTF-8 flag zipfile decodes names as cp437, yet many tools write UTF-8 and forget
    the flag; such names re-encode to cp437 bytes that are valid UTF-8. Backslashes become "/"
    so that Windows-style names are checked (and stored) as the paths they would resolve to.
    """
    name = info.filename
    if not info.flag_bits & UTF8_FLAG:
        try:
            name = name.encode("cp437").decode("utf-8")
        except UnicodeError:
            pass
    return unicodedata.normalize("NFC", name.replace("\\", "/"))


def _check_hostile(info: zipfile.ZipInfo, name: str) -> None:
    """Fail the archive on any entry that could write outside its folder."""
    if name.startswith("/") or _DRIVE.match(name):
        raise UnusableDataset(f"The archive contains an absolute path ({name}); it was rejected for safety.")
    if ".." in name.split("/"):
        raise UnusableDataset(
            f"The archive contains a path that leaves its folder ({name}); it was rejected for safety.")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise UnusableDataset(f"The archive contains a symbolic link ({name}); it was rejected for safety.")


def is_ignored(parts: tuple[str, ...]) -> bool:
    """System leftovers and hidden files: silently not part of the dataset."""
    return (any(p.startswith(".") or p in SYSTEM_FOLDERS for p in parts)
            or parts[-1].lower() in SYSTEM_FILES)


def list_members(zf: zipfile.ZipFile, limits: IngestLimits) -> list[Member]:
    """Every file that may belong to the dataset, after refusing hostile archives outright.

    Hostile entries fail the archive even inside ignored folders: nothing an archive says
    about a path that leaves its folder is innocent.
    """
    infos = zf.infolist()
    if not infos:
        raise UnusableDataset("The archive is empty.")
    if len(infos) > limits.max_files:
        raise UnusableDataset(_too_many(len(infos), limits))
    members = []
    for info in infos:
        name = decode_name(info)
        _check_hostile(info, name)
        parts = tuple(p for p in name.split("/") if p not in ("", "."))
        if not parts or name.endswith("/") or is_ignored(parts):
            continue
        members.append(Member(info, "/".join(parts), parts))
    if not members:
        raise UnusableDataset(
            "The archive contains no files, only folders or system files such as __MACOSX and .DS_Store.")
    check_sizes(members, limits)
    return members


def check_sizes(members: list[Member], limits: IngestLimits) -> None:
    """Refuse archives whose declared sizes exceed the limits or look like a zip bomb."""
    for m in members:
        size, packed = m.info.file_size, m.info.compress_size
        if size > BOMB_MIN_MEMBER and size > limits.max_ratio * max(packed, 1):
            raise UnusableDataset(
                f"The archive looks like a zip bomb: {m.name} would inflate from {human_bytes(packed)} "
                f"to {human_bytes(size)}; it was rejected for safety.")
    total = sum(m.info.file_size for m in members)
    packed = sum(m.info.compress_size for m in members)
    if total > limits.max_inflated_bytes:
        raise UnusableDataset(
            f"The archive would inflate to {human_bytes(total)}, more than the limit of "
            f"{human_bytes(limits.max_inflated_bytes)}.")
    if total > BOMB_MIN_TOTAL and total > limits.max_ratio * max(packed, 1):
        raise UnusableDataset(
            f"The archive looks like a zip bomb: it would inflate from {human_bytes(packed)} to "
            f"{human_bytes(total)}; it was rejected for safety.")


class ArchiveReader:
    """Reads members in full, each capped by the per-file limit and the archive's remaining budget."""

    def __init__(self, zf: zipfile.ZipFile, limits: IngestLimits):
        self.zf = zf
        self.limits = limits
        self.budget = limits.max_inflated_bytes

    def read(self, member: Member) -> bytes:
        """The member's bytes. MemberError for one bad file, UnusableDataset when a cap is exceeded."""
        info = member.info
        if info.flag_bits & ENCRYPTED_FLAG:
            raise MemberError("file is encrypted")
        if info.file_size > self.limits.max_file_bytes:
            raise MemberError(f"file is too large ({human_bytes(info.file_size)}; "
                              f"the limit is {human_bytes(self.limits.max_file_bytes)})")
        cap = min(self.limits.max_file_bytes, self.budget)
        data = self._read_capped(member, cap)
        if data is None:
            raise UnusableDataset(
                f"The archive member {member.name} inflates beyond {human_bytes(cap)}, more than the archive "
                "declared; it was rejected for safety.")
        self.budget -= len(data)
        return data

    def head(self, member: Member, size: int = HEAD_BYTES) -> bytes:
        """The first bytes of a member, enough to tell whether it is an image."""
        if member.info.flag_bits & ENCRYPTED_FLAG:
            raise MemberError("file is encrypted")
        return self._read_capped(member, size, stop=True) or b""

    def _read_capped(self, member: Member, cap: int, stop: bool = False) -> bytes | None:
        """Stream at most cap bytes; None if the member holds more (or its first cap bytes if stop)."""
        chunks, total = [], 0
        try:
            with self.zf.open(member.info) as fh:
                while chunk := fh.read(min(READ_CHUNK, cap - total + 1)):
                    total += len(chunk)
                    if total > cap:
                        if stop:
                            return b"".join(chunks) + chunk[: cap - total + len(chunk)]
                        return None
                    chunks.append(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError, RuntimeError,
                OSError) as exc:
            detail = str(exc).rstrip(".") or type(exc).__name__
            raise MemberError(f"file could not be read from the archive ({detail})") from exc
        return b"".join(chunks)
