"""What a file is, from its first bytes, so a wrong file is refused with the real reason.

Keras asked to open a `.keras` file that is not a zip says "File not found: filepath=<server
path>", which is both wrong and a server path. The web process checks an uploaded model's
first bytes here before any library opens it (and `jobs.ml.backbones.inspect_file` does again,
for scripts), and says what the file is instead, naming it by the name its owner gave it.
Standard library only: the web process imports it.
"""

from __future__ import annotations

HEAD_BYTES = 4096  # enough for an HDF5 signature after a user block of up to 2 KiB

HDF5 = b"\x89HDF\r\n\x1a\n"
ZIP = (b"PK\x03\x04", b"PK\x05\x06")
_KNOWN = (
    (b"PK\x03\x04", "a zip archive"),
    (b"PK\x05\x06", "an empty zip archive"),
    (HDF5, "an HDF5 file"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip file"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x7fELF", "a program (ELF)"),
)


def describe(head: bytes) -> str:
    """What these first bytes look like, in words: "a JPEG image", "a text file", "an unknown kind of file"."""
    if not head:
        return "empty"
    for magic, what in _KNOWN:
        if head.startswith(magic):
            return what
    if len(head) >= 8 and head[4:8] == b"TFL3":
        return "a TensorFlow Lite model"
    if b"\0" not in head:
        try:
            head.decode("utf-8")
            return "a text file"
        except UnicodeDecodeError as exc:
            if exc.start >= len(head) - 3:  # a character cut at the end of the sample
                return "a text file"
    return "an unknown kind of file"


def _is_hdf5(head: bytes) -> bool:
    return any(head[offset:offset + len(HDF5)] == HDF5 for offset in (0, 512, 1024, 2048))


def model_file_problem(filename: str, head: bytes) -> str | None:
    """None when `head` (the first HEAD_BYTES) can start a model file named `filename` (.keras, .h5,
    .tflite), else one sentence naming the file, what it is instead, and what to upload."""
    suffix = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    what = describe(head)
    if not head:
        return f"{filename} is empty: upload the model file itself."
    if suffix == ".keras" and not head.startswith(ZIP):
        return (f"{filename} could not be opened as a Keras model: a .keras file is a zip archive, and this one is "
                f"{what}. Save the model with model.save(\"name.keras\") and upload that file.")
    if suffix == ".h5" and not _is_hdf5(head):
        return (f"{filename} could not be opened as a Keras model: an .h5 file is an HDF5 file, and this one is "
                f"{what}. Save the model with model.save(\"name.h5\") and upload that file.")
    if suffix == ".tflite" and head[4:8] != b"TFL3":
        return (f"{filename} could not be opened as a TensorFlow Lite model: it is {what}. Convert the model with "
                "tf.lite.TFLiteConverter and upload the .tflite file it writes.")
    return None
