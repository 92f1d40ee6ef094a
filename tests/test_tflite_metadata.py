"""TFLite Metadata read without TensorFlow: round trips, the real published model, and hostile files.

Files with metadata are written by `tests.tflite_files.with_metadata` (the layout tflite-support's
populator writes); the published MobileNet carries metadata written by Google's own tools.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import flatbuffers
import numpy as np
import pytest

from jobs.ml.tflite_metadata import MAX_LABEL_BYTES, MAX_LABELS, TFLiteMetadata, read_metadata
from tests.tflite_files import (
    LABEL_FILE,
    append_zip,
    attach_metadata_buffer,
    metadata_flatbuffer,
    with_metadata,
)

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = ROOT / "tests" / "data" / "pretrained" / "mobilenet_v1_0.5_160_quant.tflite"

# Exactly representable as float32, and unusual enough to be found as bytes in the file.
MEAN = (127.5, 116.25, 103.5)
STD = (58.5, 57.0, 57.25)
LABELS = ["cat", "dög", "", "bird 🐦"]
FAST = 1.0  # seconds any single read of a hostile file may take


@pytest.fixture(scope="module")
def tiny_tflite() -> bytes:
    """A float model with a 32x32x3 input and 3 outputs, converted by TensorFlow Lite (no metadata)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3, activation="softmax"),
    ])
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


@pytest.fixture(scope="module")
def full(tiny_tflite) -> bytes:
    return with_metadata(tiny_tflite, mean=MEAN, std=STD, labels=LABELS, name="tiny", description="Three classes.")


def write(tmp_path: Path, data: bytes, name: str = "model.tflite") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read_fast(path: Path) -> TFLiteMetadata | None:
    """read_metadata, which must neither raise nor take long, whatever the file holds."""
    start = time.monotonic()
    result = read_metadata(path)
    assert time.monotonic() - start < FAST
    assert result is None or isinstance(result, TFLiteMetadata)
    return result


def metadata_vector_length_at(data: bytes) -> int:
    """Where Model.metadata's element count is stored (field 6, vtable entry 16 in schema.fbs)."""
    from tensorflow.lite.python import schema_py_generated as schema

    table = schema.Model.GetRootAs(data, 0)._tab
    return table.Vector(table.Offset(16)) - 4


def buffers_vector_length_at(data: bytes) -> int:
    from tensorflow.lite.python import schema_py_generated as schema

    table = schema.Model.GetRootAs(data, 0)._tab
    return table.Vector(table.Offset(12)) - 4


def metadata_buffer_index_at(data: bytes) -> int:
    """Where the TFLITE_METADATA entry's buffer index is stored."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAs(data, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() == b"TFLITE_METADATA":
            return entry._tab.Pos + entry._tab.Offset(6)
    raise AssertionError("no TFLITE_METADATA entry")


def patched(data: bytes, pos: int, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into("<I", out, pos, value)
    return bytes(out)


# Round trips.

def test_mean_std_labels_name_and_description_read_back_exactly(tmp_path, full):
    assert read_metadata(write(tmp_path, full)) == TFLiteMetadata(
        mean=MEAN, std=STD, labels=tuple(LABELS), name="tiny", description="Three classes.")


def test_the_file_with_metadata_still_loads_and_runs_in_tflite(tiny_tflite, full):
    import tensorflow as tf

    pixels = np.random.default_rng(0).uniform(0, 255, (1, 32, 32, 3)).astype(np.float32)
    outputs = []
    for content in (tiny_tflite, full):
        interpreter = tf.lite.Interpreter(model_content=content)
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], pixels)
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
    assert outputs[1].shape == (1, 3)
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_parts_the_metadata_leaves_out_read_as_none(tmp_path, tiny_tflite):
    only_name = with_metadata(tiny_tflite, name="bare")
    assert read_metadata(write(tmp_path, only_name)) == TFLiteMetadata(None, None, None, "bare", "")
    only_mean = with_metadata(tiny_tflite, mean=[0.5])
    assert read_metadata(write(tmp_path, only_mean)) == TFLiteMetadata((0.5,), None, None)


def test_label_lines_keep_their_index_and_lose_trailing_blank_lines(tmp_path, tiny_tflite):
    model = attach_metadata_buffer(tiny_tflite, metadata_flatbuffer(label_file=LABEL_FILE))
    data = append_zip(model, {LABEL_FILE: b"a\r\n\r\nc\xff\r\n\n  \n\n"})
    assert read_metadata(write(tmp_path, data)).labels == ("a", "", "c\ufffd")


def test_a_converted_model_without_metadata_reads_none(tmp_path, tiny_tflite):
    assert read_metadata(write(tmp_path, tiny_tflite)) is None
    assert read_metadata(str(write(tmp_path, tiny_tflite))) is None


def test_metadata_stored_past_the_flatbuffer_as_in_models_over_2_gb(tmp_path, tiny_tflite):
    """Buffer.offset/size count from the file start; the bytes sit after the flatbuffer."""
    from tensorflow.lite.python import schema_py_generated as schema

    metadata = metadata_flatbuffer(mean=MEAN, std=STD, name="big")

    def pack(offset: int, size: int) -> bytes:
        model = schema.ModelT.InitFromPackedBuf(bytearray(tiny_tflite), 0)
        buffer = schema.BufferT()
        buffer.offset, buffer.size = offset, size
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name, entry.buffer = "TFLITE_METADATA", len(model.buffers) - 1
        model.metadata.append(entry)
        builder = flatbuffers.Builder(0)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())

    end = len(pack(2, len(metadata)))  # the same length whatever the (non-default) values
    data = pack(end, len(metadata)) + metadata
    assert read_metadata(write(tmp_path, data)) == TFLiteMetadata(MEAN, STD, None, "big", "")
    assert read_fast(write(tmp_path, pack(end, 1 << 40) + metadata)) is None
    assert read_fast(write(tmp_path, pack(1 << 62, len(metadata)) + metadata)) is None


# The real published model.

def test_the_published_mobilenet_carries_google_written_metadata():
    metadata = read_metadata(PUBLISHED)
    assert metadata.name == "ImageClassifier"
    assert metadata.description == "Identify the most prominent object in the image from a known set of categories."
    # Normalization of the float graph: quantized models share it (see metadata_schema.fbs), and
    # with the input's scale 1/128 and zero point 128 it amounts to feeding raw uint8 pixels.
    assert (metadata.mean, metadata.std) == ((127.5,), (127.5,))
    assert len(metadata.labels) == 1001
    assert metadata.labels[0] == "background"
    assert metadata.labels[286] == "Egyptian cat"
    assert metadata.labels[935] == "hotdog, hot dog, red hot"


def test_reading_imports_neither_tensorflow_nor_django():
    code = ("import sys; from jobs.ml.tflite_metadata import read_metadata; "
            f"assert read_metadata({str(PUBLISHED)!r}).labels; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', 'django', 'tflite'}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# Hostile and damaged files.

def test_empty_missing_and_random_files_read_none(tmp_path):
    assert read_fast(write(tmp_path, b"")) is None
    assert read_fast(tmp_path / "not-there.tflite") is None
    assert read_fast(tmp_path) is None
    rng = np.random.default_rng(1)
    for size in (3, 8, 64, 4096, 100_000):
        junk = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        assert read_fast(write(tmp_path, junk)) is None
        if size >= 8:
            assert read_fast(write(tmp_path, junk[:4] + b"TFL3" + junk[8:])) is None


def test_truncated_files_never_raise(tmp_path, full):
    for cut in [*range(0, len(full), max(1, len(full) // 60)), len(full) - 1]:
        read_fast(write(tmp_path, full[:cut]))
    assert read_fast(write(tmp_path, full[:8])) is None


def test_flipped_bytes_never_raise(tmp_path, full):
    rng = np.random.default_rng(2)
    for _ in range(150):
        data = bytearray(full)
        for pos in rng.integers(0, len(data), 4):
            data[pos] = int(rng.integers(0, 256))
        read_fast(write(tmp_path, bytes(data)))


def test_out_of_range_buffer_index_and_lying_model_vectors_read_none(tmp_path, full):
    for index in (len(full), 0x7FFFFFFF, 0xFFFFFFFF):
        assert read_fast(write(tmp_path, patched(full, metadata_buffer_index_at(full), index))) is None
    for at in (metadata_vector_length_at(full), buffers_vector_length_at(full)):
        for length in (0x10000, 0xFFFFFFFF):
            assert read_fast(write(tmp_path, patched(full, at, length))) is None


def test_lying_lengths_inside_the_metadata_lose_only_their_part(tmp_path, full):
    mean_at = full.index(struct.pack("<3f", *MEAN)) - 4
    damaged = read_fast(write(tmp_path, patched(full, mean_at, 0xFFFFFFFF)))
    assert (damaged.mean, damaged.std, damaged.labels) == (None, STD, tuple(LABELS))
    name_at = full.index(LABEL_FILE.encode()) - 4  # the metadata's string comes before the zip's
    damaged = read_fast(write(tmp_path, patched(full, name_at, 0xFFFFFFFF)))
    assert (damaged.mean, damaged.labels, damaged.name) == (MEAN, None, "tiny")


def test_nonsense_normalization_reads_none(tmp_path, tiny_tflite):
    for mean, std in (([float("nan")], [0.0]), ([], [float("inf")]), (list(range(2000)), [1.0] * 2000)):
        metadata = read_fast(write(tmp_path, with_metadata(tiny_tflite, mean=mean, std=std)))
        assert (metadata.mean, metadata.std) == (None, None)


def test_missing_label_files_read_none(tmp_path, tiny_tflite):
    model = attach_metadata_buffer(tiny_tflite, metadata_flatbuffer(mean=MEAN, label_file=LABEL_FILE))
    assert read_fast(write(tmp_path, model)) == TFLiteMetadata(MEAN, None, None)
    other = append_zip(model, {"readme.txt": b"no labels here"})
    assert read_fast(write(tmp_path, other)) == TFLiteMetadata(MEAN, None, None)


def deflated_zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def lie_about_sizes(archive: bytes, size: int) -> bytes:
    """The zip with its members' uncompressed sizes rewritten, in the local and the central headers."""
    out = bytearray(archive)
    for signature, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = out.find(signature)
        struct.pack_into("<I", out, pos + at, size)
    return bytes(out)


def test_label_zip_bombs_and_oversized_label_files_read_none(tmp_path, tiny_tflite):
    model = attach_metadata_buffer(tiny_tflite, metadata_flatbuffer(mean=MEAN, label_file=LABEL_FILE))
    bomb = deflated_zip({LABEL_FILE: b"\n" * (16 << 20)})  # 16 MiB of newlines in about 16 KB
    assert len(bomb) < 64 * 1024
    for archive in (bomb, lie_about_sizes(bomb, 100), lie_about_sizes(bomb, MAX_LABEL_BYTES)):
        assert read_fast(write(tmp_path, model + archive)) == TFLiteMetadata(MEAN, None, None)
    too_big = append_zip(model, {LABEL_FILE: b"x" * (MAX_LABEL_BYTES + 1)})
    assert read_fast(write(tmp_path, too_big)).labels is None
    too_many = append_zip(model, {LABEL_FILE: b"a\n" * (MAX_LABELS + 1)})
    assert read_fast(write(tmp_path, too_many)).labels is None
    enough = append_zip(model, {LABEL_FILE: b"a\n" * MAX_LABELS})
    assert len(read_fast(write(tmp_path, enough)).labels) == MAX_LABELS
