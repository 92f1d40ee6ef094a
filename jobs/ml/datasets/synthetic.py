"""Offline built-in datasets: generated shapes and scikit-learn's digits, written as upload zips.

A fresh install has no internet and no data, yet the first thing a person wants is to train
something. These builders give them real work at once, and they write exactly the archive a
user would upload (PRODUCT.md, "Data formats accepted"), so built-in data goes through the
same ingestion, checks and split as everything else instead of a side door.

Everything here is numpy + Pillow (scikit-learn only for the digits, imported when used): no
TensorFlow, cheap to import from the web process. A builder is deterministic for its seed: the
same arguments give the same archive bytes, so datasets made on two machines hash the same.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from jobs.ml.catalog import BUILTIN_DATASETS, DatasetSource

# Every member gets this timestamp: the archive's bytes then depend on its content only.
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)

# Shapes are drawn this many times larger, then shrunk: smooth edges like a photographed shape.
SUPERSAMPLE = 4

SHAPES = ("circle", "square", "triangle")


# --- archive writing (shared with reference.py) ----------------------------------------------

AddMember = Callable[[str, bytes], None]


@contextmanager
def zip_writer(path: Path) -> Iterator[AddMember]:
    """Yield `add(name, data)` that writes one member of a new zip at `path`.

    The archive is written beside `path` and moved into place only when complete, so a crash
    or a cancelled job never leaves a half archive that looks whole. Images are stored (PNG and
    JPEG do not shrink further), text is deflated; timestamps are fixed for reproducible bytes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    try:
        with zipfile.ZipFile(partial, "w") as archive:

            def add(name: str, data: bytes) -> None:
                info = zipfile.ZipInfo(name, ZIP_TIMESTAMP)
                info.external_attr = 0o644 << 16
                is_text = name.endswith((".txt", ".csv"))
                info.compress_type = zipfile.ZIP_DEFLATED if is_text else zipfile.ZIP_STORED
                archive.writestr(info, data)

            yield add
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def encode_jpeg(image: Image.Image, quality: int = 92) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


# --- drawing ----------------------------------------------------------------------------------

Colour = tuple[int, int, int]


def _shape_points(shape: str, cx: float, cy: float, radius: float, angle: float) -> list[tuple]:
    """Vertices of a square or an equilateral triangle with circumradius `radius`, rotated."""
    corners = 4 if shape == "square" else 3
    start = angle - np.pi / 2  # angle 0: a triangle points up, a square stands on a corner
    steps = start + 2 * np.pi * np.arange(corners) / corners
    return [(cx + radius * np.cos(a), cy + radius * np.sin(a)) for a in steps]


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, radius: float,
                angle: float, fill: Colour) -> None:
    """Draw one filled shape on a supersampled canvas (coordinates already scaled)."""
    if shape == "circle":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=fill)
    elif shape in ("square", "triangle"):
        draw.polygon(_shape_points(shape, cx, cy, radius, angle), fill=fill)
    else:
        raise ValueError(f"Unknown shape {shape!r}; the generator draws {', '.join(SHAPES)}.")


def _render(size: int, background: Colour, shapes: Sequence[tuple], noise: float,
            rng: np.random.Generator) -> Image.Image:
    """Render `(shape, cx, cy, radius, angle, colour)` tuples (pixel units) with optional noise."""
    big = size * SUPERSAMPLE
    canvas = Image.new("RGB", (big, big), background)
    draw = ImageDraw.Draw(canvas)
    for shape, cx, cy, radius, angle, colour in shapes:
        _draw_shape(draw, shape, cx * SUPERSAMPLE, cy * SUPERSAMPLE, radius * SUPERSAMPLE, angle, colour)
    image = canvas.resize((size, size), Image.Resampling.BOX)
    if noise <= 0:
        return image
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0.0, noise, (size, size, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8), "RGB")


def _light_ground_dark_fill(rng: np.random.Generator) -> tuple[Colour, Colour]:
    """A random light background and a random dark fill: any hue on either side, always a clear outline."""
    background = rng.integers(170, 256, size=3)
    fill = rng.integers(0, 90, size=3)
    return tuple(int(v) for v in background), tuple(int(v) for v in fill)


# --- shapes classification ----------------------------------------------------------------------

# The angle `_shape_points` takes for an upright shape: a triangle pointing up, a square on a side.
UPRIGHT = {"circle": 0.0, "square": np.pi / 4, "triangle": 0.0}

def make_shapes_classification_zip(path: Path, per_class: int = 60, size: int = 64, seed: int = 0,
                                   classes: Sequence[str] = SHAPES) -> Path:
    """Write `<shapes>/<class>/<class>-NNNN.png`: one filled shape per image, `per_class` each.

    Each shape stands upright (a triangle points up, a square sits flat) at a random size and place,
    filled with a random dark colour on a random light ground, with a little Gaussian noise: neither
    colour nor brightness tells the classes apart, only the outline. A model from scratch learns that
    from 48 training images per class (the conv net passes 90% in ten epochs). Random colours on both
    sides and random rotations, as the first version drew them, left every network trained from
    scratch memorising each picture's colours at chance on new ones (issue 15).
    """
    if per_class < 1 or size < 16:
        raise ValueError("Shapes need at least one image per class and at least 16 px.")
    rng = np.random.default_rng(seed)
    with zip_writer(path) as add:
        for shape in classes:
            for index in range(per_class):
                radius = rng.uniform(0.18, 0.40) * size
                margin = radius * 1.05
                cx, cy = rng.uniform(margin, size - margin, size=2)
                background, fill = _light_ground_dark_fill(rng)
                image = _render(size, background, [(shape, cx, cy, radius, UPRIGHT.get(shape, 0.0), fill)], 8.0, rng)
                add(f"shapes/{shape}/{shape}-{index:04d}.png", encode_png(image))
    return Path(path)


# --- shapes captions ----------------------------------------------------------------------------

COLOURS: dict[str, Colour] = {
    "red": (214, 39, 40), "green": (44, 160, 44), "blue": (31, 89, 214), "yellow": (240, 200, 20),
    "purple": (128, 60, 170), "orange": (245, 127, 14),
}
# Plain light backgrounds; captions do not describe them, so the model learns to ignore them.
BACKGROUNDS: tuple[Colour, ...] = ((250, 250, 250), (228, 228, 228), (242, 236, 222), (222, 232, 242))

# Where a position puts a shape's centre, as fractions of the image side.
POSITIONS: dict[str, tuple[float, float]] = {
    "left": (0.25, 0.5), "right": (0.75, 0.5), "top": (0.5, 0.25), "bottom": (0.5, 0.75),
    "center": (0.5, 0.5),
}
PAIRS = (("left", "right"), ("top", "bottom"))
SIZES = {"small": 0.11, "large": 0.19}  # circumradius as a fraction of the image side

NOUNS = {
    "circle": ("circle", "round shape", "disc"),
    "square": ("square", "box", "square shape"),
    "triangle": ("triangle", "triangular shape", "three sided shape"),
}
SIZE_WORDS = {"small": ("small", "little", "tiny"), "large": ("large", "big", "huge")}
PLACES = {
    "left": ("on the left", "at the left side", "to the left", "in the left part of the picture"),
    "right": ("on the right", "at the right side", "to the right", "in the right part of the picture"),
    "top": ("at the top", "near the top", "in the upper part of the picture", "at the top of the image"),
    "bottom": ("at the bottom", "near the bottom", "in the lower part of the picture",
               "at the bottom of the image"),
    "center": ("in the middle", "in the center", "in the centre of the picture", "at the center"),
}
# How one object is described; {a} is the article that fits the word after it.
OBJECT_PATTERNS = (
    "{a} {colour} {noun} {place}",
    "{a} {size} {colour} {noun} {place}",
    "{a} {size} {noun} in {colour} {place}",
    "{a} {noun} coloured {colour} {place}",
    "{a} {colour} {size} {noun} {place}",
    "{colour} {noun} {place}",
)
PREFIXES_ONE = ("", "there is ", "the picture shows ", "an image of ", "we can see ")
PREFIXES_TWO = ("", "there is ", "the picture shows ", "two shapes: ", "we can see ")
CAPTIONS_PER_IMAGE = 5
SPLIT_SHARES = (0.70, 0.15)  # train, dev; the rest is test


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _describe(obj: dict, pattern: str, rng: np.random.Generator) -> str:
    """One object's phrase from a pattern, with a random synonym for each slot."""
    words = {
        "colour": obj["colour"],
        "noun": str(rng.choice(NOUNS[obj["shape"]])),
        "size": str(rng.choice(SIZE_WORDS[obj["size"]])),
        "place": str(rng.choice(PLACES[obj["position"]])),
    }
    phrase = pattern.replace("{a} ", "").format(**words)
    return f"{_article(phrase)} {phrase}" if pattern.startswith("{a} ") else phrase


def _captions(objects: list[dict], rng: np.random.Generator) -> list[str]:
    """Five differently worded captions: distinct patterns, random prefixes and synonyms."""
    prefixes = PREFIXES_ONE if len(objects) == 1 else PREFIXES_TWO
    captions: list[str] = []
    while len(captions) < CAPTIONS_PER_IMAGE:
        for index in rng.permutation(len(OBJECT_PATTERNS)):
            pattern = OBJECT_PATTERNS[index]
            # "there is red circle" is not English: a pattern without an article stands alone.
            prefix = str(rng.choice(prefixes)) if pattern.startswith("{a} ") else ""
            caption = prefix + " and ".join(_describe(o, pattern, rng) for o in objects)
            if caption not in captions:
                captions.append(caption)
            if len(captions) == CAPTIONS_PER_IMAGE:
                break
    return captions


def _scene(rng: np.random.Generator, size: int) -> tuple[list[dict], list[tuple]]:
    """One or two shapes in distinct named colours and positions; their description and drawing."""
    if rng.random() < 0.6:
        positions = [str(rng.choice(list(POSITIONS)))]
    else:
        positions = list(PAIRS[rng.integers(len(PAIRS))])
    colours = rng.choice(list(COLOURS), size=len(positions), replace=False)
    objects, drawn = [], []
    for position, colour in zip(positions, colours, strict=True):
        obj = {"shape": str(rng.choice(SHAPES)), "colour": str(colour),
               "size": str(rng.choice(list(SIZES))), "position": position}
        fx, fy = POSITIONS[position]
        cx, cy = (np.array([fx, fy]) + rng.uniform(-0.04, 0.04, size=2)) * size
        radius = SIZES[obj["size"]] * size * rng.uniform(0.9, 1.1)
        angle = rng.uniform(-0.25, 0.25)  # a slight tilt; a triangle still points up
        if obj["shape"] == "square":
            angle += np.pi / 4  # stand squares on a side
        objects.append(obj)
        drawn.append((obj["shape"], cx, cy, radius, angle, COLOURS[obj["colour"]]))
    return objects, drawn


def _plain_caption(objects: list[dict]) -> str:
    """One fixed wording per scene: colour, the first noun and place, no size ("a red circle on the left")."""
    return " and ".join(f"{_article(o['colour'])} {o['colour']} {NOUNS[o['shape']][0]} {PLACES[o['position']][0]}"
                        for o in objects)


def make_shapes_captions_zip(path: Path, n_images: int = 120, size: int = 96, seed: int = 0,
                             plain: bool = False) -> Path:
    """Write a Flickr8k-layout caption dataset of coloured shapes with five captions per image.

    Layout: `shapes-captions/Images/shapes_NNNN.jpg`, `Flickr8k.token.txt` (`name.jpg#k<TAB>
    caption`, k = 0..4) and the three split files (70/15/15, shuffled with the seed). The
    captions are templates with synonyms, so the five references really differ and BLEU
    against them measures something, yet the language is small enough to learn in minutes.
    Synonyms also cap BLEU: no caption can match words chosen at random (a model that knows each
    scene exactly scores about 0.7 BLEU-4). `plain` gives every scene one fixed wording instead
    (the same pictures for the same seed), so BLEU measures only what the model sees.
    """
    if n_images < 3 or size < 32:
        raise ValueError("A caption dataset needs at least 3 images (one per split) of at least 32 px.")
    rng = np.random.default_rng(seed)
    names, token_lines = [], []
    top = "shapes-captions"
    with zip_writer(path) as add:
        for index in range(n_images):
            objects, drawn = _scene(rng, size)
            background = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
            image = _render(size, background, drawn, 4.0, rng)
            name = f"shapes_{index:04d}.jpg"
            add(f"{top}/Images/{name}", encode_jpeg(image))
            names.append(name)
            captions = _captions(objects, rng)  # drawn either way: the pictures stay the same for a seed
            if plain:
                captions = [_plain_caption(objects)] * CAPTIONS_PER_IMAGE
            token_lines += [f"{name}#{k}\t{c}" for k, c in enumerate(captions)]
        add(f"{top}/Flickr8k.token.txt", ("\n".join(token_lines) + "\n").encode("utf-8"))
        order = [names[i] for i in rng.permutation(n_images)]
        n_train = max(1, int(round(n_images * SPLIT_SHARES[0])))
        n_dev = max(1, int(round(n_images * SPLIT_SHARES[1])))
        splits = {"train": order[:n_train], "dev": order[n_train:n_train + n_dev],
                  "test": order[n_train + n_dev:]}
        for split, members in splits.items():
            add(f"{top}/Flickr_8k.{split}Images.txt", ("\n".join(sorted(members)) + "\n").encode("utf-8"))
    return Path(path)


# --- scikit-learn digits ------------------------------------------------------------------------

def make_digits_zip(path: Path, size: int = 32) -> Path:
    """Write scikit-learn's 1,797 8x8 digit scans as `digits/<0..9>/digit-NNNN.png`, `size` px.

    They are real handwriting shipped inside scikit-learn, so this works offline. Values 0..16
    become 0..255 and the images are enlarged bilinearly (8 px is below what the models accept).
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = np.clip(np.round(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    with zip_writer(path) as add:
        for index, (scan, label) in enumerate(zip(pixels, digits.target, strict=True)):
            image = Image.fromarray(scan, "L").resize((size, size), Image.Resampling.BILINEAR)
            add(f"digits/{int(label)}/digit-{index:04d}.png", encode_png(image))
    return Path(path)


# --- registry -----------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class Builtin(DatasetSource):
    """An offline dataset the UI offers with one click: its catalogue entry, and `make(path)`, which
    writes its upload zip."""

    make: Callable[[Path], Path]


# Titles and descriptions live in the plain catalogue the web process reads (jobs.ml.catalog).
_MAKERS: dict[str, Callable[[Path], Path]] = {
    "digits": make_digits_zip,
    "shapes": make_shapes_classification_zip,
    "shapes-captions": make_shapes_captions_zip,
}
BUILTIN_OFFLINE: dict[str, Builtin] = {
    name: Builtin(**vars(source), make=_MAKERS[name])
    for name, source in BUILTIN_DATASETS.items()
}
