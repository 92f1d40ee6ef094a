"""Caption files: decoding, Flickr8k token and split files, captions.csv, and text statistics.

Caption files come from spreadsheets and old scripts as often as from careful tools, so the
reader is forgiving where the meaning is clear (a byte-order mark, Latin-1 or Windows text,
an unquoted comma in the last column, a tab-separated table) and lists every line it could
not use with its number, instead of failing the dataset over one bad line.
"""

from __future__ import annotations

import codecs
import csv
import io
import unicodedata
from array import array
from dataclasses import dataclass, field

from jobs.ml.datasets.model import UnusableDataset
from jobs.ml.datasets.stats import histogram

MAX_SAMPLES = 10

FLICKR_LINE = "expected image.jpg#n, a tab, then the caption"


@dataclass
class CaptionTable:
    """Captions by image key (a cleaned relative name), in file order, plus unusable lines."""

    captions: dict[str, list[str]] = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)

    def add(self, image: str, caption: str) -> None:
        self.captions.setdefault(normalise_key(image), []).append(caption)

    def bad_line(self, source: str, number: int, why: str) -> None:
        self.skipped.append({"path": source, "reason": f"line {number} is malformed: {why}"})


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM) or UTF-16 with BOM; otherwise Windows-1252, then Latin-1.

    Text that is not UTF-8 almost always comes from a Windows program, whose code page 1252 is
    Latin-1 plus curly quotes and dashes in 0x80-0x9F; Latin-1 decodes any byte at all.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def normalise_key(name: str) -> str:
    """An image name as written in a caption file, comparable with archive member names."""
    name = unicodedata.normalize("NFC", name.strip()).replace("\\", "/")
    return "/".join(p for p in name.split("/") if p not in ("", "."))


def parse_flickr_tokens(text: str, source: str) -> CaptionTable:
    """Flickr8k.token.txt: one `image.jpg#k<TAB>caption` per line (the #k is optional)."""
    table = CaptionTable()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        left, tab, caption = line.partition("\t")
        image, caption = left.strip(), caption.strip()
        hash_at = image.rfind("#")
        if hash_at > 0 and image[hash_at + 1:].isdigit():
            image = image[:hash_at]
        if not tab or not image or not caption:
            table.bad_line(source, number, FLICKR_LINE)
            continue
        table.add(image, caption)
    return table


def parse_split_file(text: str) -> list[str]:
    """A Flickr8k split file: one image name per line."""
    return [normalise_key(line) for line in text.splitlines() if line.strip()]


def parse_caption_table(text: str, source: str) -> CaptionTable:
    """captions.csv / captions.txt with a header naming the `image` and `caption` columns.

    Quoted captions may hold commas. When the caption is the last column, extra fields on a
    line are an unquoted comma inside the caption and are joined back.
    """
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first and "," not in first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        if "image" not in header or "caption" not in header:
            raise UnusableDataset(f"The captions file {source} must start with the header line image,caption "
                                  f"(its first line is {first.strip()[:80]!r}).")
        i_image, i_caption, width = header.index("image"), header.index("caption"), len(header)
        table = CaptionTable()
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) > width and i_caption == width - 1:
                row = row[:i_caption] + [delimiter.join(row[i_caption:])]
            if len(row) != width:
                table.bad_line(source, reader.line_num, f"expected {width} fields, found {len(row)}")
            elif not row[i_image].strip() or not row[i_caption].strip():
                table.bad_line(source, reader.line_num, "the image name or the caption is empty")
            else:
                table.add(row[i_image], row[i_caption].strip())
    except csv.Error as exc:
        raise UnusableDataset(
            f"The captions file {source} could not be read as CSV at line {reader.line_num}: {exc}.") from exc
    return table


def clean_caption(text: str) -> str:
    """The words a model sees: lowercase, no punctuation, no one-letter or digit-bearing tokens.

    Apostrophes vanish ("dog's" -> "dogs"); other punctuation and symbols separate words
    ("black-and-white" -> "black and white"), in any script.
    """
    text = unicodedata.normalize("NFC", text).lower().replace("'", "").replace("\u2019", "")
    spaced = "".join(" " if unicodedata.category(c)[0] in "PS" else c for c in text)
    return " ".join(t for t in spaced.split() if len(t) > 1 and not any(c.isdigit() for c in t))


class CaptionStats:
    """Vocabulary, caption lengths (in cleaned words) and a few samples for the dataset page."""

    def __init__(self) -> None:
        self.vocabulary: set[str] = set()
        self.lengths = array("l")
        self.samples: list[dict] = []

    def add(self, image: str, captions: list[str]) -> None:
        for caption in captions:
            words = clean_caption(caption).split()
            self.vocabulary.update(words)
            self.lengths.append(len(words))
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append({"image": image, "captions": list(captions)})

    def summary(self) -> dict:
        return {
            "vocabulary_size": len(self.vocabulary),
            "caption_lengths": histogram(self.lengths),
            "samples": self.samples,
        }
