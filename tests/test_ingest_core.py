"""The dataset ingestion core as plain code: real zips and real images, no Django, no TensorFlow.

Every archive is built here with zipfile and Pillow, hostile ones included (a real 300 MB zip
bomb, a hand-made PNG header claiming a billion pixels), and every test checks that nothing
is written outside the dataset folder.
"""

from __future__ import annotations

import gc
import gzip
import hashlib
import io
import random
import stat
import struct
import subprocess
import sys
import threading
import unicodedata
import weakref
import zipfile
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jobs.ml.datasets import archive as archive_module
from jobs.ml.datasets import ingest as ingest_module
from jobs.ml.datasets.captions import clean_caption, decode_text
from jobs.ml.datasets.ingest import IngestLimits, UnusableDataset, ingest_archive, stratified_split
from jobs.ml.datasets.splits import split_counts
from jobs.ml.datasets.stats import histogram

ROOT = Path(__file__).resolve().parent.parent


# --- building archives ----------------------------------------------------------------------

def image_bytes(fmt: str = "PNG", mode: str = "RGB", size: tuple[int, int] = (24, 16), seed: int = 0,
                **save) -> bytes:
    """A small noisy image (distinct per seed) in the given format and colour mode."""
    rng = np.random.default_rng(seed)
    w, h = size
    if mode == "I;16":
        im = Image.fromarray(rng.integers(0, 65535, (h, w), dtype=np.uint16))
        assert im.mode == "I;16"
    else:
        im = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), "RGB")
        if mode != "RGB":
            im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, fmt, **save)
    return buf.getvalue()


def animated_gif(seed: int = 0) -> bytes:
    frames = [Image.open(io.BytesIO(image_bytes("PNG", seed=seed + i))).convert("P") for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels in a few dozen bytes (never decode it)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
            + chunk(b"IEND", b""))


def make_zip(path: Path, entries, compression=zipfile.ZIP_DEFLATED) -> Path:
    """entries: {name: bytes} or [(name or ZipInfo, bytes)], written in that order."""
    items = entries.items() if isinstance(entries, dict) else entries
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in items:
            zf.writestr(name, data)
    return path


def two_classes(extra=()) -> list:
    return [("cats/a.png", image_bytes(seed=1)), ("cats/b.png", image_bytes(seed=2)),
            ("dogs/c.png", image_bytes(seed=3)), ("dogs/d.png", image_bytes(seed=4)), *extra]


def snapshot(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


class Run:
    """ingest_archive with recorders, checking that nothing lands outside the dataset folder."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.zip = tmp_path / "upload.zip"
        self.dataset_dir = tmp_path / "datasets" / "ds1"
        self.batches: list[list] = []
        self.progress: list[tuple[float, str]] = []

    @property
    def items(self) -> list:
        return [item for batch in self.batches for item in batch]

    def __call__(self, entries=None, kind: str = "classification", **kwargs):
        if entries is not None:
            make_zip(self.zip, entries)
        before = snapshot(self.tmp)
        try:
            return ingest_archive(self.zip, self.dataset_dir, kind, on_items=self.batches.append,
                                  progress=lambda f, m: self.progress.append((f, m)), **kwargs)
        finally:
            self.assert_nothing_outside(before)

    def assert_nothing_outside(self, before: set[str]) -> None:
        """Only dataset_dir, its parents and its contents may have appeared; nothing vanished."""
        after = snapshot(self.tmp)
        rel = self.dataset_dir.relative_to(self.tmp)
        allowed = {str(rel), *(str(p) for p in rel.parents)}
        new = after - before
        assert before <= after
        assert all(p in allowed or p.startswith(f"{rel}/") for p in new), sorted(new - allowed)

    def unusable(self, entries=None, kind: str = "classification", **kwargs) -> str:
        with pytest.raises(UnusableDataset) as info:
            self(entries, kind, **kwargs)
        return str(info.value)


@pytest.fixture
def run(tmp_path) -> Run:
    return Run(tmp_path)


def reasons(result) -> dict[str, str]:
    return {s["path"]: s["reason"] for s in result.skipped}


def stored(run: Run, item) -> Image.Image:
    im = Image.open(run.dataset_dir / "images" / item.path)
    im.load()
    return im


# --- classification ---------------------------------------------------------------------------

def test_a_classification_zip_with_every_format_and_mode_is_stored_in_forms_tensorflow_reads(run):
    big_jpeg = image_bytes("JPEG", size=(300, 200), seed=10)
    entries = [
        ("photos/", b""),
        ("photos/cats/a.jpg", big_jpeg),
        ("photos/cats/b.png", image_bytes("PNG", "RGBA", seed=11)),
        ("photos/cats/c.gif", animated_gif(seed=12)),
        ("photos/cats/d.webp", image_bytes("WEBP", seed=13)),
        ("photos/cats/e.png", image_bytes("PNG", "P", seed=14)),
        ("photos/dogs/f.bmp", image_bytes("BMP", seed=15)),
        ("photos/dogs/g.tif", image_bytes("TIFF", "CMYK", seed=16)),
        ("photos/dogs/h.jpg", image_bytes("JPEG", "L", seed=17)),
        ("photos/dogs/i.png", image_bytes("PNG", "I;16", seed=18)),
        ("photos/dogs/j.jpg", image_bytes("JPEG", "CMYK", seed=19)),
        ("photos/dogs/k.png", image_bytes("PNG", "L", seed=20)),
        ("photos/dogs/notes.txt", b"these are my dogs\n"),
        ("__MACOSX/photos/cats/._a.jpg", b"\0\5\26\7 resource fork"),
        ("photos/.DS_Store", b"\0\0\0\1Bud1"),
        ("photos/cats/.hidden.jpg", image_bytes("JPEG", seed=21)),
        ("photos/.git/config", b"[core]"),
        ("photos/dogs/Thumbs.db", b"\xd0\xcf\x11\xe0"),
    ]
    result = run(entries)

    assert result.num_items == 11
    assert result.classes == [{"name": "cats", "count": 5}, {"name": "dogs", "count": 6}]
    assert result.skipped == [{"path": "photos/dogs/notes.txt", "reason": "not an image Pillow can read"}]
    assert result.num_captions == 0 and not result.has_split_files
    by_name = {Path(item.original).name: item for item in run.items}
    assert {item.path for item in run.items} == {
        "cats/a.jpg", "cats/b.png", "cats/c.png", "cats/d.png", "cats/e.png",
        "dogs/f.png", "dogs/g.png", "dogs/h.jpg", "dogs/i.png", "dogs/j.png", "dogs/k.png"}
    originals = dict(entries)
    for item in run.items:
        data = originals[item.original]
        assert item.checksum == hashlib.sha256(data).hexdigest()
        assert item.label == item.path.split("/")[0] and item.split is None and item.captions == []
        im = stored(run, item)
        assert im.format in ("JPEG", "PNG") and im.mode in ("RGB", "RGBA", "L", "LA", "P"), item
        assert (im.width, im.height) == (item.width, item.height)
        kept = (run.dataset_dir / "images" / item.path).read_bytes() == data
        assert kept == ((item.format, item.mode) in {("JPEG", "RGB"), ("JPEG", "L"), ("PNG", "RGBA"),
                                                     ("PNG", "P"), ("PNG", "L")}), item
        thumb = Image.open(run.dataset_dir / "thumbs" / item.thumbnail)
        assert thumb.format == "JPEG" and thumb.mode == "RGB" and item.thumbnail.endswith(".jpg")
        assert max(thumb.size) == min(128, max(item.width, item.height))
    a = next(i for i in run.items if i.path == "cats/a.jpg")
    assert (a.width, a.height) == (300, 200)
    assert Image.open(run.dataset_dir / "thumbs" / a.thumbnail).size == (128, 85)
    modes = {i.original.rsplit("/", 1)[1]: i.mode for i in run.items}
    assert modes["g.tif"] == "CMYK" and modes["i.png"] == "I;16" and modes["b.png"] == "RGBA"
    assert stored(run, by_name["b.png"]).mode == "RGBA"
    assert stored(run, by_name["g.tif"]).mode == "RGB"
    # 16-bit greyscale is scaled, not clipped to white.
    assert np.asarray(stored(run, by_name["i.png"])).mean() < 200
    assert result.stats["formats"] == {"BMP": 1, "GIF": 1, "JPEG": 3, "PNG": 4, "TIFF": 1, "WEBP": 1}
    assert result.stats["modes"]["CMYK"] == 2
    assert sum(result.stats["image_sizes"]["widths"]["counts"]) == 11
    on_disk = sum(p.stat().st_size for p in (run.dataset_dir / "images").rglob("*") if p.is_file())
    assert result.stats["total_bytes"] == on_disk
    assert snapshot(run.dataset_dir) >= {"images", "thumbs"}
    assert not any("MACOSX" in p or "hidden" in p or "DS_Store" in p for p in snapshot(run.dataset_dir))


def test_non_ascii_class_and_file_names_survive_end_to_end_in_nfc(run):
    decomposed = unicodedata.normalize("NFD", "chat_été/crème.png")
    result = run([("chat_été/чай.png", image_bytes(seed=1)), (decomposed, image_bytes(seed=2)),
                  ("犬/ß.jpg", image_bytes("JPEG", seed=3))])

    assert result.classes == [{"name": "chat_été", "count": 2}, {"name": "犬", "count": 1}]
    assert {i.path for i in run.items} == {"chat_été/чай.png", "chat_été/crème.png", "犬/ß.jpg"}
    for item in run.items:
        assert (run.dataset_dir / "images" / item.path).is_file()
        assert unicodedata.is_normalized("NFC", item.path) and unicodedata.is_normalized("NFC", item.original)


def zip_with_raw_names(path: Path, raw_entries: list[tuple[bytes, bytes]]) -> Path:
    """A zip whose names are raw bytes with the UTF-8 flag unset, as old tools write them."""
    placeholders = [(f"Q{i:03d}".encode() * 64)[: len(raw)] for i, (raw, _) in enumerate(raw_entries)]
    make_zip(path, [(p.decode(), data) for p, (_, data) in zip(placeholders, raw_entries, strict=True)],
             zipfile.ZIP_STORED)
    blob = path.read_bytes()
    for placeholder, (raw, _) in zip(placeholders, raw_entries, strict=True):
        assert blob.count(placeholder) == 2  # local header and central directory
        blob = blob.replace(placeholder, raw)
    path.write_bytes(blob)
    return path


def test_names_without_the_utf8_flag_are_read_as_utf8_when_they_are_else_as_cp437(run):
    zip_with_raw_names(run.zip, [
        ("chat_été/thé.png".encode(), image_bytes(seed=1)),
        (b"dogs/caf\x82.png", image_bytes(seed=2)),  # cp437 0x82 is "é"; not valid UTF-8
    ])
    with zipfile.ZipFile(run.zip) as zf:
        assert not any(info.flag_bits & 0x800 for info in zf.infolist())

    result = run()

    assert [c["name"] for c in result.classes] == ["chat_été", "dogs"]
    assert {i.path for i in run.items} == {"chat_été/thé.png", "dogs/café.png"}


def test_nested_single_folders_are_stripped_and_subfolders_belong_to_their_class(run):
    result = run([("a/b/c/cats/indoor/x.png", image_bytes(seed=1)), ("a/b/c/cats/y.png", image_bytes(seed=2)),
                  ("a/b/c/dogs/z.png", image_bytes(seed=3)), ("a/b/c/readme.txt", b"hi")])

    assert result.classes == [{"name": "cats", "count": 2}, {"name": "dogs", "count": 1}]
    assert {i.path for i in run.items} == {"cats/indoor/x.png", "cats/y.png", "dogs/z.png"}
    assert reasons(result) == {"a/b/c/readme.txt": "not inside a class folder"}


def test_clashing_stored_names_get_numbered_and_extensions_follow_the_stored_format(run):
    result = run(two_classes([("cats/a.bmp", image_bytes("BMP", seed=5)), ("cats/A.PNG", image_bytes(seed=6)),
                              ("cats/scan.001", image_bytes("TIFF", seed=7)),
                              ("cats/photo", image_bytes("JPEG", seed=8))]))

    assert result.num_items == 8
    assert {i.path for i in run.items if i.label == "cats"} == {
        "cats/a.png", "cats/b.png", "cats/a-1.png", "cats/A-2.PNG", "cats/scan.001.png", "cats/photo.jpg"}
    assert len({i.thumbnail for i in run.items}) == 8


# --- unusable archives ------------------------------------------------------------------------

def test_a_file_that_is_not_a_zip_is_refused_with_a_sentence(run):
    run.zip.write_text("name,caption\nhello,world\n")
    assert run.unusable().startswith("This file is not a zip archive, or it is damaged:")

    run.zip.write_bytes(gzip.compress(b"tar contents"))
    assert run.unusable() == ("This file is not a zip archive, it is a gzip file (.gz or .tar.gz): please "
                              "upload a .zip file.")


def test_a_truncated_zip_is_refused(run):
    make_zip(run.zip, two_classes())
    blob = run.zip.read_bytes()
    run.zip.write_bytes(blob[: len(blob) // 2])

    assert run.unusable().startswith("This file is not a zip archive, or it is damaged:")
    assert not run.dataset_dir.exists()


def test_an_empty_zip_and_a_zip_of_system_files_are_refused(run):
    assert run.unusable([]) == "The archive is empty."
    assert "no files" in run.unusable([("__MACOSX/._x", b"x"), (".DS_Store", b"x"), ("cats/", b"")])


def test_one_class_folder_is_not_a_classification_dataset(run):
    message = run.unusable([("data/cats/a.png", image_bytes(seed=1)), ("data/cats/b.png", image_bytes(seed=2))])

    assert message == "The archive has only one class folder (cats); a classification dataset needs at least two."
    assert not run.dataset_dir.exists()  # decided from the names alone, before writing


def test_a_class_whose_images_are_all_broken_leaves_one_class(run):
    message = run.unusable([("cats/a.png", image_bytes(seed=1)), ("dogs/b.jpg", b"\xff\xd8\xff garbage")])
    assert "only one class with usable images (cats)" in message


def test_an_archive_of_text_files_has_no_images(run):
    message = run.unusable([("a/x.txt", b"hello"), ("b/y.txt", b"world"), ("b/z.csv", b"1,2")])
    assert message == "No images found: the archive holds 3 files, none of them an image Pillow can read."

    assert "no class folders" in run.unusable([("x.png", image_bytes()), ("y.png", image_bytes())])


@pytest.mark.parametrize("name", ["../evil.png", "cats/../../evil.png", "..\\evil.png", "__MACOSX/../../x"])
def test_a_path_leaving_its_folder_fails_the_whole_archive(run, name):
    message = run.unusable(two_classes([(name, image_bytes())]))

    assert "leaves its folder" in message and "rejected for safety" in message
    assert name.replace("\\", "/") in message
    assert not run.dataset_dir.exists()
    assert not (run.tmp / "evil.png").exists() and not (run.tmp / "datasets" / "evil.png").exists()


@pytest.mark.parametrize("name", ["/etc/passwd", "C:/Windows/evil.png", "c:\\evil.png", "\\\\server\\share\\x.png"])
def test_an_absolute_path_fails_the_whole_archive(run, name):
    message = run.unusable(two_classes([(zipfile.ZipInfo(name), b"root::0:0")]))

    assert "absolute path" in message and "rejected for safety" in message
    assert not run.dataset_dir.exists()


def test_a_symlink_member_fails_the_whole_archive(run):
    link = zipfile.ZipInfo("cats/link.png")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16

    message = run.unusable(two_classes([(link, b"../../../../etc/passwd")]))

    assert message == "The archive contains a symbolic link (cats/link.png); it was rejected for safety."


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory) -> Path:
    """300 MB of zeros in one deflated member: a few hundred KB on disk."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("cats/a.png", image_bytes(seed=1))
        zf.writestr("dogs/b.png", image_bytes(seed=2))
        with zf.open("dogs/zeros.png", "w", force_zip64=True) as fh:
            chunk = bytes(1024**2)
            for _ in range(300):
                fh.write(chunk)
    assert path.stat().st_size < 3 * 1024**2
    return path


def test_a_zip_bomb_is_refused_before_anything_is_inflated(run, zip_bomb, monkeypatch):
    run.zip.write_bytes(zip_bomb.read_bytes())
    opened = []
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: opened.append(a) or 1 / 0)

    message = run.unusable()

    assert message.startswith("The archive looks like a zip bomb: dogs/zeros.png would inflate")
    assert opened == [] and not run.dataset_dir.exists()


def test_archive_wide_bombs_sizes_and_entry_counts_are_refused_from_declared_values(run, zip_bomb):
    run.zip.write_bytes(zip_bomb.read_bytes())
    message = run.unusable(limits=IngestLimits(max_inflated_bytes=10 * 1024**2, max_ratio=1e9))
    assert message.startswith("The archive would inflate to 300.0 MB, more than the limit of 10.0 MB")

    make_zip(run.zip, two_classes())
    assert run.unusable(limits=IngestLimits(max_files=3)) == (
        "The archive holds 4 entries, more than the limit of 3.")


def test_the_total_ratio_rule_catches_many_small_bomb_members(run):
    zeros = bytes(9 * 1024**2)  # each under the 10 MiB single-member threshold
    make_zip(run.zip, two_classes([(f"cats/z{i}.png", zeros) for i in range(12)]))
    message = run.unusable()
    assert message.startswith("The archive looks like a zip bomb: it would inflate from")


def test_reads_are_capped_even_when_declared_sizes_lie(run):
    make_zip(run.zip, two_classes())
    limits = IngestLimits()
    with zipfile.ZipFile(run.zip) as zf:
        members = archive_module.list_members(zf, limits)
        reader = archive_module.ArchiveReader(zf, limits)
        reader.budget = 100  # as if the earlier members had inflated beyond their claims
        with pytest.raises(UnusableDataset, match="inflates beyond 100 bytes"):
            reader.read(members[0])
        small = archive_module.ArchiveReader(zf, IngestLimits(max_file_bytes=100))
        with pytest.raises(archive_module.MemberError, match="file is too large"):
            small.read(members[0])


def central_entry(blob: bytes, name: str) -> int:
    """Offset of the central-directory record for `name`."""
    at = blob.find(b"PK\x01\x02")
    while at >= 0:
        (length,) = struct.unpack("<H", blob[at + 28:at + 30])
        if blob[at + 46:at + 46 + length] == name.encode():
            return at
        at = blob.find(b"PK\x01\x02", at + 4)
    raise AssertionError(name)


def test_a_member_with_a_bad_crc_or_encryption_is_skipped_not_fatal(run):
    make_zip(run.zip, two_classes([("dogs/broken.png", image_bytes(seed=9))]), zipfile.ZIP_STORED)
    with zipfile.ZipFile(run.zip) as zf:
        info = zf.getinfo("dogs/broken.png")
        data_at = info.header_offset + 30 + len(info.filename) + len(info.extra)
    blob = bytearray(run.zip.read_bytes())
    blob[data_at + 100] ^= 0xFF
    blob[central_entry(blob, "dogs/d.png") + 8] |= 1  # "encrypted" in the flags zipfile reads
    run.zip.write_bytes(bytes(blob))

    result = run()

    assert reasons(result) == {
        "dogs/broken.png": "file could not be read from the archive (Bad CRC-32 for file 'dogs/broken.png')",
        "dogs/d.png": "file is encrypted"}
    assert result.classes == [{"name": "cats", "count": 2}, {"name": "dogs", "count": 1}]


# --- broken single images ---------------------------------------------------------------------

def test_a_billion_pixel_header_is_skipped_without_decoding(run):
    bomb = png_header_only(40000, 25000)
    assert len(bomb) < 100
    pillow_limit = Image.MAX_IMAGE_PIXELS
    result = run(two_classes([("cats/huge.png", bomb), ("dogs/big.png", png_header_only(10000, 6001))]))

    assert reasons(result) == {
        "cats/huge.png": "image is too large (40000 x 25000 pixels; the limit is 60,000,000)",
        "dogs/big.png": "image is too large (10000 x 6001 pixels; the limit is 60,000,000)",
    }
    assert result.num_items == 4
    assert Image.MAX_IMAGE_PIXELS == pillow_limit  # Pillow's process-wide guard is left alone


def test_the_pixel_limit_is_ours_to_set(run):
    result = run(two_classes([("cats/wide.png", image_bytes(size=(30, 20)))]), limits=IngestLimits(max_pixels=500))
    assert reasons(result) == {"cats/wide.png": "image is too large (30 x 20 pixels; the limit is 500)"}


def test_truncated_garbage_and_text_files_are_skipped_with_reasons(run):
    jpeg = image_bytes("JPEG", size=(64, 64), seed=5)
    result = run(two_classes([
        ("cats/truncated.jpg", jpeg[: len(jpeg) // 2]),
        ("cats/garbage.jpg", random.Random(4).randbytes(5000).replace(b"\xff\xd8", b"\0\0")),
        ("dogs/list.txt", "élément\n".encode()),
        ("dogs/zero.png", b""),
    ]))

    assert reasons(result) == {
        "cats/truncated.jpg": "image is damaged or truncated",
        "cats/garbage.jpg": "not an image Pillow can read",
        "dogs/list.txt": "not an image Pillow can read",
        "dogs/zero.png": "not an image Pillow can read",
    }
    assert result.num_items == 4


def test_a_file_over_the_per_file_limit_is_skipped(run):
    big = image_bytes(size=(200, 200), seed=1)
    result = run(two_classes([("cats/big.png", big)]), limits=IngestLimits(max_file_bytes=len(big) - 1))
    assert reasons(result)["cats/big.png"].startswith("file is too large (")


# --- captions ---------------------------------------------------------------------------------

def flickr_entries() -> list:
    tokens = "\n".join([
        "img1.jpg#0\tA dog runs across the grass .",
        "img1.jpg#1\tA brown dog is running outside .",
        "img2.jpg#0\tTwo children play on a swing .",
        "img3.jpg#0\tA man rides a bike down a hill .",
        "img4.jpg#0\tA woman's red hat, in the wind .",
        "ghost.jpg#0\tA picture that is not there .",
        "ghost.jpg#1\tStill not there .",
        "this line has no tab",
        "",
    ])
    images = [(f"Flicker8k_Dataset/img{i}.jpg", image_bytes("JPEG", seed=i)) for i in range(1, 6)]
    return [*images,
            ("Flickr8k_text/Flickr8k.token.txt", tokens.encode()),
            ("Flickr8k_text/Flickr_8k.trainImages.txt", b"img1.jpg\nimg2.jpg\n"),
            ("Flickr8k_text/Flickr_8k.devImages.txt", b"img3.jpg\n"),
            ("Flickr8k_text/Flickr_8k.testImages.txt", b"img4.jpg\r\nghost.jpg\r\n"),
            ("Flickr8k_text/readme.txt", b"Flickr 8k, see the paper"),
            ("Flickr8k_text/Flickr8k.lemma.token.txt", b"img1.jpg#0\tdog run")]


def test_the_flickr8k_layout_with_split_files(run):
    result = run(flickr_entries(), kind="captions")

    assert result.num_items == 4 and result.num_captions == 5 and result.has_split_files
    assert result.classes == []
    by_name = {Path(i.path).name: i for i in run.items}
    assert by_name["img1.jpg"].captions == ["A dog runs across the grass .", "A brown dog is running outside ."]
    assert {name: i.split for name, i in by_name.items()} == {
        "img1.jpg": "train", "img2.jpg": "train", "img3.jpg": "val", "img4.jpg": "test"}
    assert all(i.label == "" and i.path.startswith("Flicker8k_Dataset/") for i in run.items)
    skipped = result.skipped
    assert {"path": "ghost.jpg", "reason": "a caption names this image, but the archive does not contain it"} in skipped
    assert sum(s["path"] == "ghost.jpg" for s in skipped) == 1
    assert {"path": "Flicker8k_Dataset/img5.jpg", "reason": "no caption for this image"} in skipped
    assert {"path": "Flickr8k_text/readme.txt", "reason": "not an image Pillow can read"} in skipped
    assert any(s["path"] == "Flickr8k_text/Flickr8k.token.txt" and s["reason"].startswith("line 8 is malformed")
               for s in skipped)
    assert len(skipped) == 5
    stats = result.stats
    assert stats["vocabulary_size"] == len({w for i in run.items for c in i.captions
                                            for w in clean_caption(c).split()})
    assert sum(stats["caption_lengths"]["counts"]) == 5
    assert stats["samples"][0] == {"image": "Flicker8k_Dataset/img1.jpg", "captions": by_name["img1.jpg"].captions}
    assert stats["formats"] == {"JPEG": 4}


def test_captions_csv_with_quoted_commas_a_bom_and_folders(run):
    csv_text = ('\ufeffimage,caption\n'
                '"images/a.png","A dog, running, on grass"\n'
                'b.png,A cat sleeping\n'
                'b.png,"A cat, asleep ""on"" a mat"\n'
                'c.png,A bird, unquoted\n'
                ',no image\n')
    result = run([("set/images/a.png", image_bytes(seed=1)), ("set/images/b.png", image_bytes(seed=2)),
                  ("set/images/c.png", image_bytes(seed=3)), ("set/captions.csv", csv_text.encode())],
                 kind="captions")

    captions = {Path(i.path).name: i.captions for i in run.items}
    assert captions == {"a.png": ["A dog, running, on grass"],
                        "b.png": ["A cat sleeping", 'A cat, asleep "on" a mat'],
                        "c.png": ["A bird, unquoted"]}
    assert not result.has_split_files and all(i.split is None for i in run.items)
    assert result.skipped == [{"path": "set/captions.csv",
                               "reason": "line 6 is malformed: the image name or the caption is empty"}]


def test_a_latin1_captions_txt(run):
    text = "image,caption\nx.png,Un café crème sur la table\ny.png,Ça déborde\n".encode("latin-1")
    result = run([("x.png", image_bytes(seed=1)), ("y.png", image_bytes(seed=2)), ("captions.txt", text)],
                 kind="captions")

    assert {Path(i.path).name: i.captions for i in run.items} == {
        "x.png": ["Un café crème sur la table"], "y.png": ["Ça déborde"]}
    assert result.stats["vocabulary_size"] == 8


def test_decode_text_handles_boms_windows_and_latin1():
    assert decode_text("\ufeffé".encode()) == "é"
    assert decode_text("é".encode("utf-16")) == "é"
    assert decode_text(b"l\x92\xe9t\xe9") == "l\u2019été"  # Windows-1252
    assert decode_text(b"\x81\xe9") == "\x81é"  # undefined in cp1252: Latin-1


def test_captions_naming_only_missing_images_and_no_caption_file_are_unusable(run):
    message = run.unusable([("a.png", image_bytes()), ("captions.csv", b"image,caption\nzz.png,hello\n")],
                           kind="captions")
    assert message == "None of the 1 images named in captions.csv is in the archive."

    message = run.unusable([("a.png", image_bytes()), ("notes.txt", b"hello")], kind="captions")
    assert message == ("No captions file found: add Flickr8k.token.txt, or captions.csv with the header "
                       "image,caption.")

    message = run.unusable([("a.png", image_bytes()), ("captions.csv", b"file;text\na.png;hello\n")],
                           kind="captions")
    assert "must start with the header line image,caption" in message


def test_clean_caption():
    assert clean_caption("A dog's 2 toys, running!") == "dogs toys running"
    assert clean_caption("Black-and-white PHOTO of a cat.") == "black and white photo of cat"
    assert clean_caption("«Él» está aquí; 3D x") == "él está aquí"


# --- splits, hashes, batches, progress --------------------------------------------------------

def test_stratified_split_is_deterministic_proportional_and_order_independent():
    keys = {"cats": [f"c{i}" for i in range(100)], "dogs": list(range(50)), "one": ["o"], "two": ["t1", "t2"],
            "three": ["a", "b", "c"], "empty": []}
    shuffled = {label: random.Random(1).sample(ks, len(ks)) for label, ks in reversed(list(keys.items()))}

    split = stratified_split(keys, seed=7)

    assert split == stratified_split(shuffled, seed=7)
    assert split != stratified_split(keys, seed=8)
    assert set(split) == {k for ks in keys.values() for k in ks}
    counts = {label: Counter(split[k] for k in ks) for label, ks in keys.items()}
    assert counts["cats"] == {"train": 80, "val": 10, "test": 10}
    assert counts["dogs"] == {"train": 40, "val": 5, "test": 5}
    assert counts["one"] == {"train": 1} and counts["two"] == {"train": 2}
    assert counts["three"] == {"train": 1, "val": 1, "test": 1}
    assert split_counts(5, (0.8, 0.1, 0.1)) == (3, 1, 1)
    assert split_counts(4, (0.0, 0.5, 0.5)) == (1, 1, 2)
    assert split_counts(10, (1, 0, 0)) == (10, 0, 0)
    with pytest.raises(ValueError):
        stratified_split(keys, fractions=(0.8, 0.2))


def test_the_content_hash_ignores_member_order_names_and_folders_but_not_labels(tmp_path):
    images = [(f"cats/{i}.png", image_bytes(seed=i)) for i in range(3)] + \
             [(f"dogs/{i}.png", image_bytes(seed=10 + i)) for i in range(3)]

    def content_hash(entries, kind="classification") -> str:
        run = Run(tmp_path / f"h{len(list(tmp_path.iterdir()))}")
        run.tmp.mkdir()
        return run(entries, kind).content_hash

    base = content_hash(images)
    renamed = [(f"top/{name.split('/')[0]}/renamed_{n}.png", data) for n, (name, data) in enumerate(images)]
    assert content_hash(list(reversed(renamed))) == base
    relabelled = [(name.replace("dogs/", "wolves/"), data) for name, data in images]
    assert content_hash(relabelled) != base

    caps = [("a.png", image_bytes(seed=1)), ("b.png", image_bytes(seed=2))]
    first = content_hash(caps + [("captions.csv", b"image,caption\na.png,one\na.png,two\nb.png,three\n")],
                         "captions")
    again = content_hash(list(reversed(caps)) + [("captions.csv", b"image,caption\nb.png,three\na.png,two\n"
                                                                  b"a.png,one\n")], "captions")
    other = content_hash(caps + [("captions.csv", b"image,caption\na.png,one\na.png,two\nb.png,four\n")],
                         "captions")
    assert first == again != other


def test_items_arrive_in_batches_exactly_once_and_are_not_kept(run):
    entries = two_classes([(f"cats/x{i}.png", image_bytes(seed=100 + i)) for i in range(5)])
    alive = []

    def on_items(batch):
        for item in batch:
            assert (run.dataset_dir / "images" / item.path).is_file()  # stored before being handed over
            alive.append(weakref.ref(item))
        sizes.append(len(batch))
    sizes: list[int] = []
    make_zip(run.zip, entries)

    result = ingest_archive(run.zip, run.dataset_dir, "classification", on_items=on_items, batch_size=2)

    assert sizes == [2, 2, 2, 2, 1] and result.num_items == 9
    gc.collect()
    assert all(ref() is None for ref in alive), "ingest_archive kept Item objects"

    run.dataset_dir = run.tmp / "datasets" / "again"
    result = run(entries, batch_size=500)
    assert [len(b) for b in run.batches] == [9]
    originals = [i.original for i in run.items]
    assert sorted(originals) == sorted(name for name, _ in entries) and len(set(originals)) == 9


def test_progress_is_monotonic_and_ends_at_one(run):
    run(two_classes())

    fractions = [f for f, _ in run.progress]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert len(fractions) >= 6 and all(isinstance(m, str) and m for _, m in run.progress)


class Cancelled(Exception):
    pass


def test_an_exception_from_progress_propagates_and_stops_the_threads(run):
    make_zip(run.zip, two_classes([(f"cats/x{i}.png", image_bytes(seed=i)) for i in range(20)]))
    calls = []

    def progress(fraction, message):
        calls.append(fraction)
        if len(calls) == 5:
            raise Cancelled

    with pytest.raises(Cancelled):
        ingest_archive(run.zip, run.dataset_dir, "classification", progress=progress)
    assert len(calls) == 5
    assert not [t for t in threading.enumerate() if t.name.startswith("ingest")]


def test_reading_stays_a_bounded_distance_ahead_of_storing(run, monkeypatch):
    make_zip(run.zip, two_classes([(f"cats/x{i}.png", image_bytes(seed=i)) for i in range(40)]))
    reads, ahead = [], []
    real_read = archive_module.ArchiveReader.read
    monkeypatch.setattr(archive_module.ArchiveReader, "read",
                        lambda self, member: reads.append(member) or real_read(self, member))
    stored_count = []

    def on_items(batch):
        stored_count.append(len(batch))
        ahead.append(len(reads) - len(stored_count))

    ingest_archive(run.zip, run.dataset_dir, "classification", on_items=on_items, batch_size=1,
                   limits=IngestLimits(threads=2))

    assert len(stored_count) == 44
    assert max(ahead) <= 2 * ingest_module.IN_FLIGHT_PER_THREAD


def test_histograms_are_compact_with_integer_edges():
    assert histogram([]) == {"bins": [], "counts": []}
    assert histogram([5, 5, 5]) == {"bins": [5, 6], "counts": [3]}
    h = histogram(list(range(100, 1100)))
    assert len(h["counts"]) == 10 and sum(h["counts"]) == 1000 and h["bins"][0] == 100


def test_the_core_imports_no_django_celery_redis_or_tensorflow():
    code = ("import sys, jobs.ml.datasets.ingest, jobs.ml.datasets.splits; "
            "bad = sorted({m.split('.')[0] for m in sys.modules} & {'django', 'celery', 'redis', 'tensorflow', "
            "'keras', 'kombu'}); print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_an_unknown_kind_is_a_programming_error(run):
    make_zip(run.zip, two_classes())
    with pytest.raises(ValueError):
        ingest_archive(run.zip, run.dataset_dir, "detection")


# --- details ----------------------------------------------------------------------------------

@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
def test_pillows_own_bomb_warning_turned_error_still_gives_our_message(run):
    result = run(two_classes([("cats/100mp.png", png_header_only(10000, 10000))]))
    assert reasons(result) == {"cats/100mp.png": "image is too large (10000 x 10000 pixels; the limit is 60,000,000)"}


def test_eps_is_never_handed_to_ghostscript(run):
    buf = io.BytesIO()
    Image.open(io.BytesIO(image_bytes(seed=1))).save(buf, "EPS")
    result = run(two_classes([("cats/vector.eps", buf.getvalue())]))
    assert reasons(result) == {"cats/vector.eps": "not an image Pillow can read"}


def test_transparency_exif_rotation_and_thumbnails(tmp_path):
    from jobs.ml.datasets import images

    gif = Image.new("P", (20, 10), 0)
    gif.putpalette([255, 0, 0] * 256)
    buf = io.BytesIO()
    gif.save(buf, "GIF", transparency=0)
    prepared = images.prepare(buf.getvalue(), IngestLimits())
    assert prepared.format == "GIF" and prepared.suffixes == (".png",)
    assert Image.open(io.BytesIO(prepared.stored)).mode == "RGBA"
    thumb = Image.open(io.BytesIO(prepared.thumbnail))
    assert thumb.mode == "RGB" and min(thumb.getpixel((5, 5))) > 240  # transparent shows as white

    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees to display
    buf = io.BytesIO()
    Image.open(io.BytesIO(image_bytes(size=(40, 20)))).save(buf, "JPEG", exif=exif)
    prepared = images.prepare(buf.getvalue(), IngestLimits(thumb_size=16))
    assert (prepared.width, prepared.height) == (40, 20) and prepared.stored is None
    assert Image.open(io.BytesIO(prepared.thumbnail)).size == (8, 16)


def test_flickr8k_wins_over_captions_csv_and_the_other_file_is_listed(run):
    result = run([("a.jpg", image_bytes("JPEG", seed=1)), ("Flickr8k.token.txt", b"a.jpg#0\tA red square\n"),
                  ("captions.csv", b"image,caption\na.jpg,ignored\n")], kind="captions")
    assert [i.captions for i in run.items] == [["A red square"]]
    assert result.skipped == [{"path": "captions.csv", "reason": "not used: the captions come from Flickr8k.token.txt"}]
    assert not result.has_split_files


def test_the_entry_count_is_read_from_the_end_record_before_zipfile_parses_it(tmp_path, monkeypatch):
    path = make_zip(tmp_path / "a.zip", two_classes())
    assert archive_module.declared_entry_count(path) == 4
    with monkeypatch.context() as patched:  # force the Zip64 end records, then claim 0xFFFF classically
        patched.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)
        make_zip(path, two_classes())
    blob = bytearray(path.read_bytes())
    end = blob.rfind(b"PK\x05\x06")
    blob[end + 8:end + 12] = b"\xff\xff\xff\xff"
    path.write_bytes(bytes(blob))
    assert archive_module.declared_entry_count(path) == 4
    with zipfile.ZipFile(path) as zf:
        assert len(zf.infolist()) == 4

    monkeypatch.setattr(zipfile.ZipFile, "_RealGetContents", lambda self: 1 / 0)
    with pytest.raises(UnusableDataset, match="holds 4 entries, more than the limit of 3"):
        archive_module.open_archive(path, IngestLimits(max_files=3))
