"""What a file is, from its first bytes, so a wrong file is refused with the real reason.

Keras asked to open a `.keras` file that is not a zip says "File not found: filepath=<server
path>", which is both wrong and a server path. So an uploaded model's first bytes are checked
before any library opens it (each format's signature is on its class in `jobs.ml.formats`), and
`describe` says what the file is instead. Standard library only: the web process imports it.
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
