"""One image: verify it, decide how to store it, make its thumbnail. Runs in worker threads.

Any format Pillow reads is accepted, in any colour mode, but training later decodes with
TensorFlow, which reads only JPEG/PNG/GIF/BMP and no CMYK. So an image is stored as its
original bytes when TensorFlow reads them as they are (JPEG in RGB or L, PNG in the everyday
modes) and re-encoded as an 8-bit PNG otherwise. The pixel limit is checked on the header,
before a byte is decoded, so a tiny file that claims a billion pixels costs nothing.
"""

from __future__ import annotations

import functools
import hashlib
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from jobs.ml.datasets.model import IngestLimits

# EPS is decoded by running Ghostscript on the file: not something to do with an upload.
UNSAFE_FORMATS = {"EPS"}

# Formats and modes stored as the original bytes; everything else becomes a PNG.
# MPO is what cameras write as JPEG with extra frames: its first frame is a plain JPEG.
KEEP = {"JPEG": {"RGB", "L"}, "MPO": {"RGB", "L"}, "PNG": {"RGB", "RGBA", "L", "LA", "P"}}
SUFFIXES = {"JPEG": (".jpg", ".jpeg", ".jpe", ".jfif"), "MPO": (".jpg", ".jpeg", ".mpo"), "PNG": (".png",)}

ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
HIGH_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I", "F"}
THUMB_QUALITY = 80

NOT_AN_IMAGE = "not an image Pillow can read"
DAMAGED = "image is damaged or truncated"


@dataclass
class Prepared:
    """A verified image, ready for the main thread to write."""

    width: int
    height: int
    mode: str
    format: str
    checksum: str
    stored: bytes | None  # a re-encoded PNG, or None to store the original bytes
    suffixes: tuple[str, ...]  # extensions that fit the stored bytes; the first is canonical
    thumbnail: bytes
    colour: tuple[float, ...] | None = None  # colour_features(): what tells whether colour separates classes


@dataclass
class Rejected:
    """A member that is not a usable image; reason is the short sentence listed as skipped."""

    reason: str


@functools.cache
def safe_formats() -> tuple[str, ...]:
    """Every format this Pillow reads, minus those whose decoders run external programs."""
    Image.init()
    return tuple(f for f in Image.ID if f not in UNSAFE_FORMATS)


def _open_past_guard(data: bytes, formats: tuple[str, ...]) -> Image.Image | None:
    """Open (header only) an image that Image.open refused as a decompression bomb.

    Image.open stops above 2 x Image.MAX_IMAGE_PIXELS (a warning above 1 x) with an error that
    gives no dimensions, before our own limit could say "W x H pixels". This runs the same
    registered openers Image.open runs, reading the header and no pixels, so `limits.max_pixels`
    is the one limit that decides, and Pillow's process-wide setting stays untouched.
    """
    prefix = data[:16]
    for fmt in formats:
        factory, accept = Image.OPEN[fmt]
        accepted = accept is None or accept(prefix)
        if not accepted or isinstance(accepted, str):
            continue
        try:
            return factory(io.BytesIO(data), "")
        except Exception:  # a plugin that fails on these bytes simply is not the format
            continue
    return None


def too_large(width: int, height: int, limit: int) -> str:
    return f"image is too large ({width} x {height} pixels; the limit is {limit:,})"


def _open_lazily(data: bytes, max_pixels: int) -> Image.Image | Rejected:
    """Open an image (header only, no pixel decoded) whatever size it claims; `max_pixels` only words the refusal."""
    formats = safe_formats()
    try:
        return Image.open(io.BytesIO(data), formats=formats)
    except UnidentifiedImageError:
        return Rejected(NOT_AN_IMAGE)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # The warning is only raised when warnings are turned into errors.
        im = _open_past_guard(data, formats)
        return im if im is not None else Rejected(f"image is too large (the limit is {max_pixels:,} pixels)")
    except Exception:  # a plugin choking on a malformed header: a broken file
        return Rejected(DAMAGED)


def _within(im: Image.Image, max_pixels: int) -> Image.Image | Rejected:
    """`im` when its header's size is sane and at most `max_pixels`, else why not (and `im` is closed)."""
    width, height = im.size
    if width * height > max_pixels:
        im.close()
        return Rejected(too_large(width, height, max_pixels))
    if width < 1 or height < 1:
        im.close()
        return Rejected(DAMAGED)
    return im


def open_header(data: bytes, limits: IngestLimits) -> Image.Image | Rejected:
    """Open an image lazily (header only) and apply the pixel limit before any decoding."""
    im = _open_lazily(data, limits.max_pixels)
    return im if isinstance(im, Rejected) else _within(im, limits.max_pixels)


def is_image(head: bytes) -> bool:
    """Whether the first bytes of a file identify as an image (no decoding, no limits)."""
    try:
        with Image.open(io.BytesIO(head), formats=safe_formats()):
            return True
    except UnidentifiedImageError:
        return False
    except Exception:  # a pixel bomb, or a header that starts like an image but is cut short
        return True


def eight_bit(im: Image.Image) -> Image.Image:
    """16-bit, 32-bit and float greyscale scaled to 8-bit "L".

    Pillow's own conversion clips such values to 255, which turns most 16-bit images white.
    """
    if im.mode not in HIGH_BIT_MODES:
        return im
    a = np.asarray(im)
    if im.mode.startswith("I;16"):
        return Image.fromarray((a.astype(np.uint16) >> 8).astype(np.uint8), "L")
    a = a.astype(np.float64)
    lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    if lo >= 0 and hi <= 255:
        scaled = a
    elif lo >= 0 and hi <= 65535:
        scaled = a / 257.0
    else:
        scaled = (a - lo) * (255.0 / max(hi - lo, 1e-12))
    return Image.fromarray(np.nan_to_num(scaled).clip(0, 255).astype(np.uint8), "L")


def has_alpha(im: Image.Image) -> bool:
    return im.mode in ALPHA_MODES or "transparency" in im.info


def to_rgb(im: Image.Image) -> Image.Image:
    """8-bit RGB, or RGBA when the image has transparency."""
    target = "RGBA" if has_alpha(im) else "RGB"
    im = eight_bit(im)
    return im if im.mode == target else im.convert(target)


def encode_png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    to_rgb(im).save(buf, "PNG")
    return buf.getvalue()


def make_thumbnail(im: Image.Image, size: int, quality: int = THUMB_QUALITY) -> bytes:
    """An RGB JPEG, longest side `size`, upright as the camera meant it, transparency on white.

    A new file: nothing of the original's metadata (EXIF, comments, ICC profile) is carried over."""
    buf = io.BytesIO()
    thumbnail_image(im, size).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def thumbnail_image(im: Image.Image, size: int) -> Image.Image:
    """`im` upright, in RGB with transparency on white, longest side at most `size`."""
    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # a broken EXIF block only costs the rotation
        pass
    im = to_rgb(im)
    if im.mode == "RGBA":
        flat = Image.new("RGB", im.size, (255, 255, 255))
        flat.paste(im, mask=im.getchannel("A"))
        im = flat
    im.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=2.0)
    return im


COLOUR_SIDE = 32  # colour features are read from a copy this small: a mean needs no detail


def colour_features(thumb: Image.Image) -> tuple[float, float, float, float, float]:
    """(brightness, contrast, red-green, yellow-blue, chroma) of an RGB image, each about 0..1.

    The first two are what a grayscale model still sees (the mean and spread of the luma), the
    other three what only a colour model sees (mean opponent colours, mean max-minus-min channel).
    Ingestion keeps them per class (stats.ColourStats) to tell whether colour separates the classes.
    """
    small = thumb.copy()
    small.thumbnail((COLOUR_SIDE, COLOUR_SIDE), Image.Resampling.BOX)
    rgb = np.asarray(small.convert("RGB"), dtype=np.float32).reshape(-1, 3) / 255.0
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    return (float(luma.mean()), float(luma.std()), float((r - g).mean()), float(((r + g) / 2 - b).mean()),
            float((rgb.max(axis=1) - rgb.min(axis=1)).mean()))


def decode(data: bytes, limits: IngestLimits) -> Image.Image | Rejected:
    """The image fully decoded under the pixel limit (the caller closes it), or why it cannot be.

    Ingestion and predictions on uploaded photos read untrusted bytes the same way.
    """
    im = open_header(data, limits)
    return im if isinstance(im, Rejected) else _load_pixels(im, limits.max_pixels)


def _load_pixels(im: Image.Image, max_pixels: int, draft_side: int = 0) -> Image.Image | Rejected:
    """`im` with its pixels decoded, at most `max_pixels` of them, or why not (and `im` is closed).

    With `draft_side`, a JPEG is decoded already scaled down to no less than that many pixels a side.
    The size is checked before decoding (what the header claims, after the draft) and again after
    (a few formats pick their size while loading). Any decoder error on untrusted bytes means a broken
    file; running out of memory is not the file's fault and is raised.
    """
    width, height = im.size
    try:
        if draft_side:
            im.draft(None, (draft_side, draft_side))  # keeps both sides >= draft_side
        if im.width * im.height > max_pixels:
            im.close()
            return Rejected(too_large(width, height, max_pixels))
        im.load()
    except MemoryError:
        im.close()
        raise
    except Exception:  # any decoder error on untrusted bytes means a broken file
        im.close()
        return Rejected(DAMAGED)
    if im.width * im.height > max_pixels:  # a few formats pick their size while loading
        im.close()
        return Rejected(too_large(im.width, im.height, max_pixels))
    return im


# A JPEG decodes at 1/2, 1/4 or 1/8 of its size for next to nothing (libjpeg scales the DCT), so
# its header may claim this many times the decoding budget: a 200-megapixel phone photo still fits.
JPEG_FORMATS = {"JPEG", "MPO"}
JPEG_HEADROOM = 16
# A model sees a small square; decoding keeps three times its side so the final resize still averages
# every pixel (Pillow's own `reducing_gap` reasoning).
OVERSAMPLE = 3
_ORIENTATION = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
                6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}


def _orientation(im: Image.Image) -> Image.Transpose | None:
    try:
        return _ORIENTATION.get(im.getexif().get(0x0112))  # EXIF Orientation
    except Exception:  # a broken EXIF block only costs the rotation
        return None


def _reducible(im: Image.Image) -> Image.Image:
    """`im` in a mode Image.reduce averages correctly (palette indices and 16-bit cannot be averaged).

    Alpha is dropped, not composited: TensorFlow's decoder did the same to the training images.
    """
    if im.mode.startswith("I;16"):
        return im.convert("I")
    if im.mode in ("1", "LA", "La"):
        return im.convert("L")
    if im.mode in ("P", "PA", "RGBA", "RGBa", "RGBX"):
        return im.convert("RGB")
    return im


def decode_for_model(data: bytes, size: int, max_pixels: int) -> Image.Image | Rejected:
    """An upload decoded no larger than a model of input side `size` needs: small, upright, 8-bit.

    Photos sent to predict, caption and the demo come from anyone, and the model looks at a
    few hundred pixels, so decoding is budgeted for that rather than for ingestion: at most
    `max_pixels` pixels are ever decoded (a JPEG is decoded already scaled down, so its header
    may claim JPEG_HEADROOM times more), checked on the header before a byte is decoded. The
    decoded image is then cut down by whole factors to about OVERSAMPLE x `size` per side before
    anything costly (EXIF rotation, 16-bit and float scaling, colour conversion) touches it.
    The caller closes the result.
    """
    im = _open_lazily(data, max_pixels)
    if isinstance(im, Rejected):
        return im
    jpeg = im.format in JPEG_FORMATS
    im = _within(im, max_pixels * JPEG_HEADROOM if jpeg else max_pixels)
    if isinstance(im, Rejected):
        return im
    wanted = max(1, size) * OVERSAMPLE
    im = _load_pixels(im, max_pixels, wanted if jpeg else 0)
    if isinstance(im, Rejected):
        return im
    turn = _orientation(im)
    small = im
    try:
        small = _reducible(small)
        factor = min(small.width // wanted, small.height // wanted)
        if factor >= 2:
            small = small.reduce(factor)
        small = eight_bit(small)
        if turn is not None:
            small = small.transpose(turn)
    except MemoryError:
        im.close()
        raise
    except Exception:  # an exotic mode or format variant
        im.close()
        return Rejected(DAMAGED)
    if small is not im:
        im.close()
    return small


def prepare(data: bytes, limits: IngestLimits) -> Prepared | Rejected:
    """Verify one image fully and produce what gets stored: the thread-pool task."""
    im = decode(data, limits)
    if isinstance(im, Rejected):
        return im
    with im:
        fmt, mode = im.format or "", im.mode
        try:
            keep = mode in KEEP.get(fmt, ())
            stored = None if keep else encode_png(im)
            thumb = thumbnail_image(im, limits.thumb_size)
            buf = io.BytesIO()
            thumb.save(buf, "JPEG", quality=THUMB_QUALITY)
            thumbnail, colour = buf.getvalue(), colour_features(thumb)
        except MemoryError:
            raise
        except Exception as exc:  # an exotic mode or format variant: this file only, not the dataset
            return Rejected(f"image could not be converted ({mode} {fmt}: {exc})")
        return Prepared(
            width=im.width, height=im.height, mode=mode, format=fmt,
            checksum=hashlib.sha256(data).hexdigest(),
            stored=stored,
            suffixes=SUFFIXES[fmt] if keep else SUFFIXES["PNG"],
            thumbnail=thumbnail, colour=colour,
        )

