"""Writes TFLite Metadata into .tflite files, as tflite-support's metadata populator does, without it.

tflite-support is not a dependency (and pins old TensorFlow), so the ModelMetadata flatbuffer is
built here by hand with `flatbuffers.Builder`, field slots as in tflite-support's
`metadata_schema.fbs`, and attached with TensorFlow's own generated Model schema: a new Buffer holds
it and a Metadata entry named TFLITE_METADATA points at that buffer. Label files go, as the populator
puts them, into a zip archive appended to the model, which TensorFlow Lite ignores.
"""

from __future__ import annotations

import io
import zipfile

import flatbuffers
import numpy as np

LABEL_FILE = "labels.txt"
TENSOR_AXIS_LABELS = 2
NORMALIZATION_OPTIONS = 1


def _vector_of_tables(builder: flatbuffers.Builder, offsets: list[int]) -> int:
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def _floats(builder: flatbuffers.Builder, values) -> int:
    builder.StartVector(4, len(values), 4)
    for value in reversed(values):
        builder.PrependFloat32(float(value))
    return builder.EndVector()


def _normalization_unit(builder: flatbuffers.Builder, mean, std) -> int:
    """ProcessUnit {options: NormalizationOptions {mean, std}}; the union is a type byte plus a table."""
    mean_vector = _floats(builder, mean) if mean is not None else None
    std_vector = _floats(builder, std) if std is not None else None
    builder.StartObject(2)  # NormalizationOptions {mean, std}
    if mean_vector is not None:
        builder.PrependUOffsetTRelativeSlot(0, mean_vector, 0)
    if std_vector is not None:
        builder.PrependUOffsetTRelativeSlot(1, std_vector, 0)
    options = builder.EndObject()
    builder.StartObject(2)  # ProcessUnit {options_type, options}
    builder.PrependUint8Slot(0, NORMALIZATION_OPTIONS, 0)
    builder.PrependUOffsetTRelativeSlot(1, options, 0)
    return builder.EndObject()


def _label_file(builder: flatbuffers.Builder, name: str) -> int:
    """AssociatedFile {name, description, type, locale, version} of type TENSOR_AXIS_LABELS."""
    name_offset = builder.CreateString(name)
    description = builder.CreateString("Labels for the categories the model can recognize.")
    builder.StartObject(5)
    builder.PrependUOffsetTRelativeSlot(0, name_offset, 0)
    builder.PrependUOffsetTRelativeSlot(1, description, 0)
    builder.PrependInt8Slot(2, TENSOR_AXIS_LABELS, 0)
    return builder.EndObject()


def _tensor(builder: flatbuffers.Builder, name: str, units: list[int], files: list[int]) -> int:
    """TensorMetadata {name, description, dimension_names, content, process_units, stats, associated_files}."""
    name_offset = builder.CreateString(name)
    units_vector = _vector_of_tables(builder, units) if units else None
    files_vector = _vector_of_tables(builder, files) if files else None
    builder.StartObject(7)
    builder.PrependUOffsetTRelativeSlot(0, name_offset, 0)
    if units_vector is not None:
        builder.PrependUOffsetTRelativeSlot(4, units_vector, 0)
    if files_vector is not None:
        builder.PrependUOffsetTRelativeSlot(6, files_vector, 0)
    return builder.EndObject()


def metadata_flatbuffer(*, mean=None, std=None, label_file: str | None = None, name="", description="") -> bytes:
    """A ModelMetadata flatbuffer (identifier M001) with one subgraph of one input and one output tensor."""
    builder = flatbuffers.Builder(1024)
    units = [_normalization_unit(builder, mean, std)] if mean is not None or std is not None else []
    image = _tensor(builder, "image", units, [])
    files = [_label_file(builder, label_file)] if label_file else []
    probability = _tensor(builder, "probability", [], files)
    inputs = _vector_of_tables(builder, [image])
    outputs = _vector_of_tables(builder, [probability])
    builder.StartObject(7)  # SubGraphMetadata {name, description, inputs, outputs, files, in units, out units}
    builder.PrependUOffsetTRelativeSlot(2, inputs, 0)
    builder.PrependUOffsetTRelativeSlot(3, outputs, 0)
    subgraph = builder.EndObject()
    subgraphs = _vector_of_tables(builder, [subgraph])
    name_offset = builder.CreateString(name)
    description_offset = builder.CreateString(description)
    version = builder.CreateString("v1")
    builder.StartObject(8)  # ModelMetadata {name, description, version, subgraph_metadata, author, ...}
    builder.PrependUOffsetTRelativeSlot(0, name_offset, 0)
    builder.PrependUOffsetTRelativeSlot(1, description_offset, 0)
    builder.PrependUOffsetTRelativeSlot(2, version, 0)
    builder.PrependUOffsetTRelativeSlot(3, subgraphs, 0)
    builder.Finish(builder.EndObject(), file_identifier=b"M001")
    return bytes(builder.Output())


def attach_metadata_buffer(tflite_bytes: bytes, metadata: bytes) -> bytes:
    """The model with `metadata` as its TFLITE_METADATA buffer (replacing one it had), repacked as TFL3."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(tflite_bytes), 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata, dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = "TFLITE_METADATA"
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name not in (b"TFLITE_METADATA", "TFLITE_METADATA")]
    model.metadata.append(entry)
    builder = flatbuffers.Builder(len(tflite_bytes) + len(metadata) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def append_zip(model_bytes: bytes, members: dict[str, bytes]) -> bytes:
    """The model with a zip of `members` appended, as the populator packs associated files."""
    out = io.BytesIO(model_bytes)
    with zipfile.ZipFile(out, "a", zipfile.ZIP_STORED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return out.getvalue()


def with_metadata(tflite_bytes: bytes, *, mean=None, std=None, labels: list[str] | None = None, name="",
                  description="") -> bytes:
    """A copy of the model carrying TFLite Metadata: input normalization, output labels, name, description.

    The result still loads and runs in `tf.lite.Interpreter`; with labels, the output tensor names
    `labels.txt` (type TENSOR_AXIS_LABELS) and the file is in a zip appended to the model.
    """
    metadata = metadata_flatbuffer(mean=mean, std=std, label_file=LABEL_FILE if labels is not None else None,
                                   name=name, description=description)
    model = attach_metadata_buffer(tflite_bytes, metadata)
    if labels is None:
        return model
    return append_zip(model, {LABEL_FILE: ("\n".join(labels) + "\n").encode("utf-8")})
