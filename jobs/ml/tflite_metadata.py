"""What a .tflite file's TFLite Metadata says about its image input and its labels.

Models published with the TFLite Metadata (tflite-support's metadata writers, TF Hub, Kaggle
Models, MediaPipe) carry the normalization their input wants (`mean`/`std`) and the label file of
their output. Knowing them lets VisionLab feed an uploaded backbone the pixels it was trained on
and name its classes, instead of guessing.

The file is read here without TensorFlow, so the web node (which never imports it) can show the
result too. The layout, from the two schemas:

- the model (`tensorflow/lite/schema/schema.fbs`, file identifier "TFL3") has a `metadata` vector of
  `Metadata {name, buffer}`; the entry named TFLITE_METADATA indexes `buffers`, whose bytes are its
  `data` vector or, in models over 2 GB, `offset`/`size` bytes counted from the start of the file;
- those bytes are a `ModelMetadata` flatbuffer (tflite-support's `metadata_schema.fbs`, file
  identifier "M001");
- associated files (the label file) are a zip archive appended to the .tflite by the metadata
  populator, found by the name the metadata gives them.

Uploaded files are untrusted, and the flatbuffers Python runtime has no verifier: its accessors
follow whatever offsets a file holds, and a lying vector length turns a loop over it into billions
of steps. So this module reads the few fields it needs through `_Buffer`, which checks every read
against the end of the buffer, and looks at no more than a fixed number of entries of any vector.
Every table is reached by a fixed path from the root (no recursion, no pointer chasing in loops), so
the work is bounded whatever the file says.
"""

from __future__ import annotations

import math
import mmap
import struct
import zipfile
from dataclasses import dataclass
from functools import partialmethod
from pathlib import Path

METADATA_NAME = b"TFLITE_METADATA"
MODEL_IDENTIFIER = b"TFL3"
METADATA_IDENTIFIER = b"M001"

# AssociatedFileType.TENSOR_AXIS_LABELS and ProcessUnitOptions.NormalizationOptions.
TENSOR_AXIS_LABELS = 2
NORMALIZATION_OPTIONS = 1

# Bounds on what a file may make us read. Real metadata is a few KB, a label file a few tens of KB
# (ImageNet-21k: 21,843 lines), mean/std one value per channel.
MAX_METADATA_BYTES = 16 * 1024 * 1024
MAX_LABEL_BYTES = 1024 * 1024
MAX_LABELS = 100_000
MAX_CHANNELS = 1024
MAX_TEXT_BYTES = 64 * 1024
# How many entries of a vector are looked at, at most: real files have a handful.
MAX_ENTRIES = 256

# Field slots (the n-th field of a table), from the schemas. Unions take two slots: type, value.
# schema.fbs: Model {version, operator_codes, subgraphs, description, buffers, metadata_buffer, metadata, ...}
MODEL_BUFFERS, MODEL_METADATA = 4, 6
# schema.fbs: Metadata {name, buffer}; Buffer {data, offset, size}
METADATA_FIELD_NAME, METADATA_FIELD_BUFFER = 0, 1
BUFFER_DATA, BUFFER_OFFSET, BUFFER_SIZE = 0, 1, 2
# metadata_schema.fbs: ModelMetadata {name, description, version, subgraph_metadata, ...}
MODEL_METADATA_NAME, MODEL_METADATA_DESCRIPTION, MODEL_METADATA_SUBGRAPHS = 0, 1, 3
# SubGraphMetadata {name, description, input_tensor_metadata, output_tensor_metadata, ...}
SUBGRAPH_INPUTS, SUBGRAPH_OUTPUTS = 2, 3
# TensorMetadata {name, description, dimension_names, content, process_units, stats, associated_files}
TENSOR_PROCESS_UNITS, TENSOR_ASSOCIATED_FILES = 4, 6
# ProcessUnit {options: ProcessUnitOptions} = options_type (ubyte), options (table)
PROCESS_UNIT_TYPE, PROCESS_UNIT_OPTIONS = 0, 1
# NormalizationOptions {mean: [float], std: [float]}
NORMALIZATION_MEAN, NORMALIZATION_STD = 0, 1
# AssociatedFile {name, description, type: AssociatedFileType (byte), locale, version}
FILE_NAME, FILE_TYPE = 0, 2


@dataclass(frozen=True)
class TFLiteMetadata:
    mean: tuple[float, ...] | None  # NormalizationOptions.mean of the (first) input tensor, or None
    std: tuple[float, ...] | None  # NormalizationOptions.std, or None
    labels: tuple[str, ...] | None  # the first output tensor's TENSOR_AXIS_LABELS file, one label per line, or None
    name: str = ""  # ModelMetadata.name
    description: str = ""  # ModelMetadata.description


class Malformed(ValueError):
    """A read that the file's offsets or lengths would take outside its buffer."""


class _Buffer:
    """Bounds-checked little-endian flatbuffer reads over bytes or an mmap.

    Positions are absolute within `data`. Every read checks its whole extent first, so a lying
    offset raises `Malformed` rather than reading elsewhere (Python's negative indexing would
    otherwise wrap around) or far away.
    """

    def __init__(self, data: bytes | mmap.mmap):
        self.data = data
        self.size = len(data)

    def _unpack(self, fmt: str, pos: int) -> int:
        width = struct.calcsize(fmt)
        if pos < 0 or pos + width > self.size:
            raise Malformed(f"read of {width} bytes at {pos} outside {self.size}")
        return struct.unpack_from(fmt, self.data, pos)[0]

    # The integer at `pos`: reader(pos) -> int.
    u8 = partialmethod(_unpack, "<B")
    i8 = partialmethod(_unpack, "<b")
    u16 = partialmethod(_unpack, "<H")
    u32 = partialmethod(_unpack, "<I")
    i32 = partialmethod(_unpack, "<i")
    u64 = partialmethod(_unpack, "<Q")

    def bytes_at(self, pos: int, length: int) -> bytes:
        if pos < 0 or length < 0 or pos + length > self.size:
            raise Malformed(f"{length} bytes at {pos} outside {self.size}")
        return bytes(self.data[pos:pos + length])

    def indirect(self, pos: int) -> int:
        """Follow the uoffset stored at `pos` (offsets count forward from where they are stored)."""
        target = pos + self.u32(pos)
        if target >= self.size:
            raise Malformed(f"offset at {pos} points past the end")
        return target

    def root(self, identifier: bytes) -> _Table:
        """The root table, when the buffer carries the file identifier the schema declares."""
        if self.size < 8 or bytes(self.data[4:8]) != identifier:
            raise Malformed(f"no {identifier!r} file identifier")
        return _Table(self, self.indirect(0))


class _Table:
    """One flatbuffer table: its fields are found through its vtable, absent ones read as None/default."""

    def __init__(self, buf: _Buffer, pos: int):
        self.buf = buf
        self.pos = pos
        self.vtable = pos - buf.i32(pos)
        self.vtable_size = buf.u16(self.vtable)

    def _field(self, slot: int) -> int | None:
        """Absolute position of field `slot`, or None when the table does not have it."""
        entry = 4 + 2 * slot
        if entry + 2 > self.vtable_size:
            return None
        offset = self.buf.u16(self.vtable + entry)
        return self.pos + offset if offset else None

    def scalar(self, slot: int, read, default: int = 0) -> int:
        pos = self._field(slot)
        return default if pos is None else read(pos)

    def table(self, slot: int) -> _Table | None:
        pos = self._field(slot)
        return None if pos is None else _Table(self.buf, self.buf.indirect(pos))

    def vector(self, slot: int, width: int) -> tuple[int, int] | None:
        """(position of the first element, length) of a vector field, its whole extent checked."""
        pos = self._field(slot)
        if pos is None:
            return None
        start = self.buf.indirect(pos)
        length = self.buf.u32(start)
        if start + 4 + length * width > self.buf.size:
            raise Malformed(f"vector of {length} at {start} runs past the end")
        return start + 4, length

    def string(self, slot: int, limit: int = MAX_TEXT_BYTES) -> str:
        """A string field as text (undecodable bytes replaced), cut at `limit` bytes; "" when absent."""
        found = self.vector(slot, 1)
        if found is None:
            return ""
        start, length = found
        return self.buf.bytes_at(start, min(length, limit)).decode("utf-8", errors="replace")

    def raw_string(self, slot: int, limit: int) -> bytes | None:
        found = self.vector(slot, 1)
        if found is None or found[1] > limit:
            return None
        return self.buf.bytes_at(*found)

    def tables(self, slot: int, limit: int = MAX_ENTRIES) -> list[_Table]:
        """The first `limit` tables of a vector of tables: a long vector costs no more than `limit` entries."""
        found = self.vector(slot, 4)
        if found is None:
            return []
        start, length = found
        return [_Table(self.buf, self.buf.indirect(start + 4 * i)) for i in range(min(length, limit))]

    def first(self, slot: int) -> _Table | None:
        found = self.tables(slot, limit=1)
        return found[0] if found else None

    def floats(self, slot: int, limit: int) -> tuple[float, ...] | None:
        found = self.vector(slot, 4)
        if found is None or found[1] > limit:
            return None
        start, length = found
        return struct.unpack_from(f"<{length}f", self.buf.data, start)


def _metadata_bytes(model: _Table) -> bytes | None:
    """The bytes of the buffer the TFLITE_METADATA entry names, or None when there is no such entry."""
    buf = model.buf
    entry = next((e for e in model.tables(MODEL_METADATA)
                  if e.raw_string(METADATA_FIELD_NAME, len(METADATA_NAME)) == METADATA_NAME), None)
    if entry is None:
        return None
    index = entry.scalar(METADATA_FIELD_BUFFER, buf.u32)
    buffers = model.vector(MODEL_BUFFERS, 4)
    if buffers is None or index >= buffers[1]:
        raise Malformed(f"metadata buffer {index} does not exist")
    buffer = _Table(buf, buf.indirect(buffers[0] + 4 * index))
    data = buffer.vector(BUFFER_DATA, 1)
    if data is not None and data[1]:
        start, length = data
    else:
        # Models over 2 GB keep buffer bytes outside the flatbuffer, at an offset from the file start.
        # The exporter writes offset 1 as a placeholder, so only offsets past it are real.
        start, length = buffer.scalar(BUFFER_OFFSET, buf.u64), buffer.scalar(BUFFER_SIZE, buf.u64)
        if start <= 1:
            raise Malformed("metadata buffer holds no bytes")
    if length > MAX_METADATA_BYTES:
        raise Malformed(f"metadata buffer of {length} bytes")
    return buf.bytes_at(start, length)


def _finite(values: tuple[float, ...] | None, positive: bool = False) -> tuple[float, ...] | None:
    """Values a caller can normalize pixels with: non-empty, finite, and for std, non-zero."""
    if not values or not all(math.isfinite(v) for v in values):
        return None
    if positive and any(v == 0 for v in values):
        return None
    return tuple(values)


def _normalization_options(tensor: _Table | None) -> _Table | None:
    """The tensor's first NormalizationOptions among its process units."""
    if tensor is None:
        return None
    for unit in tensor.tables(TENSOR_PROCESS_UNITS):
        if unit.scalar(PROCESS_UNIT_TYPE, unit.buf.u8) == NORMALIZATION_OPTIONS:
            return unit.table(PROCESS_UNIT_OPTIONS)
    return None


def _label_file_name(tensor: _Table | None) -> str | None:
    """Name of the tensor's first TENSOR_AXIS_LABELS associated file."""
    if tensor is None:
        return None
    for file in tensor.tables(TENSOR_ASSOCIATED_FILES):
        if file.scalar(FILE_TYPE, file.buf.i8) == TENSOR_AXIS_LABELS:
            return file.string(FILE_NAME) or None
    return None


def _parse_labels(raw: bytes) -> tuple[str, ...] | None:
    """One label per line; blank lines at the end dropped, those between labels kept (they hold an index)."""
    lines = raw.decode("utf-8", errors="replace").split("\n")
    lines = [line.removesuffix("\r") for line in lines]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or len(lines) > MAX_LABELS:
        return None
    return tuple(lines)


def _read_labels(path: Path, name: str) -> tuple[str, ...] | None:
    """The label file `name` from the zip appended to the model, read no further than MAX_LABEL_BYTES.

    `zipfile` finds an archive after a prefix (the model). A member's declared size can lie and its
    data can be a compression bomb, so the read is capped whatever the header says, and a member
    longer than the cap is refused, not cut.
    """
    # zipfile's failures on a damaged archive are many and undocumented (BadZipFile, EOFError,
    # zlib.error, NotImplementedError for an odd method, RuntimeError for encryption, ...): any of
    # them means the labels cannot be read, nothing more.
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo(name)
            if info.file_size > MAX_LABEL_BYTES:
                return None
            with archive.open(info) as member:
                raw = member.read(MAX_LABEL_BYTES + 1)
    except Exception:
        return None
    if len(raw) > MAX_LABEL_BYTES:
        return None
    return _parse_labels(raw)


def _guarded(read, default):
    """Run one independent part of the reading; a malformed part leaves the others readable."""
    try:
        return read()
    except (Malformed, struct.error):
        return default


def _model_metadata(data: bytes, path: Path) -> TFLiteMetadata | None:
    try:
        root = _Buffer(data).root(METADATA_IDENTIFIER)
    except (Malformed, struct.error):
        return None
    subgraph = _guarded(lambda: root.first(MODEL_METADATA_SUBGRAPHS), None)
    first_input = _guarded(lambda: subgraph.first(SUBGRAPH_INPUTS), None) if subgraph else None
    first_output = _guarded(lambda: subgraph.first(SUBGRAPH_OUTPUTS), None) if subgraph else None
    options = _guarded(lambda: _normalization_options(first_input), None)
    mean = _guarded(lambda: _finite(options.floats(NORMALIZATION_MEAN, MAX_CHANNELS)), None) if options else None
    std = _guarded(lambda: _finite(options.floats(NORMALIZATION_STD, MAX_CHANNELS), True), None) if options else None
    label_file = _guarded(lambda: _label_file_name(first_output), None)
    return TFLiteMetadata(
        mean=mean,
        std=std,
        labels=_read_labels(path, label_file) if label_file else None,
        name=_guarded(lambda: root.string(MODEL_METADATA_NAME), ""),
        description=_guarded(lambda: root.string(MODEL_METADATA_DESCRIPTION), ""),
    )


def _read_metadata_bytes(path: Path) -> bytes | None:
    """The TFLITE_METADATA buffer's bytes; the file is mapped, not read, as models run to gigabytes."""
    with open(path, "rb") as file:
        if file.seek(0, 2) < 8:
            return None
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            model = _Buffer(mapped).root(MODEL_IDENTIFIER)
            return _metadata_bytes(model)


def read_metadata(path) -> TFLiteMetadata | None:
    """What the .tflite at `path` says about its input normalization and labels, or None without metadata.

    None when the file has no TFLITE_METADATA entry, and when the file or its metadata cannot be
    read at all; parts that cannot be read (a damaged label zip, a lying vector) come back as None
    while the rest is kept. Never raises for what a file holds, and the work is bounded.
    """
    path = Path(path)
    try:
        data = _read_metadata_bytes(path)
    except (OSError, ValueError, struct.error):  # Malformed is a ValueError, as is mmap's on odd files
        return None
    if data is None:
        return None
    return _model_metadata(data, path)
