"""Defaults that fit the dataset (issue 15, item 3): ingestion measures the images' typical side and
whether colour is what tells the classes apart; a launch that leaves image size and colour mode out
takes them from there, within the architecture's limits, and grayscale for classes that differ by
colour starts with a warning.

The datasets are real archives read by the real ingestion core; their rows are stored as ingestion
stores them, without a worker (the launches here are only validated and recorded, never trained)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jobs.ml.datasets.ingest import ingest_archive
from jobs.ml.datasets.synthetic import make_shapes_classification_zip

# Three paints of about the same brightness on a gray ground the same brightness: in grayscale the
# classes (and almost the squares) vanish; in colour they are obvious.
PAINTS = {"red": (200, 80, 80), "green": (60, 150, 60), "blue": (90, 100, 230)}
GRAYSCALE_WARNING = "These classes differ by colour; grayscale input throws that away. Choose Colour (RGB)."


def png(pixels: np.ndarray, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode).save(buffer, "PNG")
    return buffer.getvalue()


def paint_zip(path: Path, per_class: int = 12, size: int = 24) -> Path:
    """`paint/<colour>/<n>.png`: a square of one paint, of random size and place, on gray."""
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as archive:
        for name, colour in PAINTS.items():
            for index in range(per_class):
                pixels = np.full((size, size, 3), 110.0)
                side = int(rng.integers(size // 3, size - 4))
                x, y = rng.integers(0, size - side, 2)
                pixels[y:y + side, x:x + side] = colour
                archive.writestr(f"paint/{name}/{index}.png", png(pixels + rng.normal(0, 6, pixels.shape)))
    return path


def gray_zip(path: Path, per_class: int = 6, size: int = 40) -> Path:
    """`marks/<dark|light>/<n>.png`: grayscale pictures, told apart by brightness."""
    rng = np.random.default_rng(1)
    with zipfile.ZipFile(path, "w") as archive:
        for name, level in (("dark", 60), ("light", 190)):
            for index in range(per_class):
                archive.writestr(f"marks/{name}/{index}.png", png(level + rng.normal(0, 10, (size, size)), "L"))
    return path


def ingested(archive: Path):
    return ingest_archive(archive, archive.parent / f"{archive.stem}-dataset", "classification")


def test_ingestion_measures_the_typical_side_and_whether_colour_separates_the_classes(tmp_path):
    paint = ingested(paint_zip(tmp_path / "paint.zip")).stats
    assert paint["typical_side"] == 24
    assert paint["colour"]["colourful_share"] == 1.0 and paint["colour"]["differs_by_colour"] is True
    separability = paint["colour"]["separability"]
    assert separability["colour"] == 1.0 and separability["gray"] < 0.75
    assert separability["chance"] == pytest.approx(1 / 3, abs=1e-3)

    # The built-in shapes: in colour, but random colours, so colour tells nothing.
    shapes = ingested(make_shapes_classification_zip(tmp_path / "shapes.zip", per_class=15)).stats
    assert shapes["typical_side"] == 64
    assert shapes["colour"]["colourful_share"] > 0.9 and shapes["colour"]["differs_by_colour"] is False

    marks = ingested(gray_zip(tmp_path / "marks.zip")).stats
    assert marks["typical_side"] == 40
    assert marks["colour"]["colourful_share"] == 0.0 and marks["colour"]["differs_by_colour"] is False


def stored(owner, name: str, archive: Path, source: str = "upload"):
    """A ready dataset row holding what ingestion measured on `archive`."""
    from webapp.datasets.models import Dataset

    result = ingested(archive)
    return Dataset.objects.create(owner=owner, name=name, kind="classification", status="ready", source=source,
                                  num_items=result.num_items, classes=result.classes, stats=result.stats)


def launched(api, dataset, architecture: str, **params) -> dict:
    answer = api.post("/api/jobs/", {"kind": "train", "dataset": dataset.id, "architecture": architecture,
                                     "params": params}, format="json")
    assert answer.status_code == 201, answer.content
    data = answer.json()
    return {"image_size": data["params"]["image_size"], "color_mode": data["params"]["color_mode"],
            "warnings": data["warnings"]}


def test_a_launch_without_input_settings_takes_them_from_the_dataset(alice, alice_api, bob_api, tmp_path):
    from webapp.datasets.models import Dataset

    paint = stored(alice, "paint", paint_zip(tmp_path / "paint.zip"))
    marks = stored(alice, "marks", gray_zip(tmp_path / "marks.zip"))

    # Colour pictures of 24 px: colour, at 24 px where the architecture allows it.
    assert launched(alice_api, paint, "lenet5") == {"image_size": 24, "color_mode": "rgb", "warnings": []}
    assert launched(alice_api, paint, "mlp")["image_size"] == 24
    assert launched(alice_api, paint, "cnn")["image_size"] == 32  # its smallest size

    # Grayscale pictures of 40 px: grayscale, and no larger than the architecture proposes.
    assert launched(alice_api, marks, "lenet5") == {"image_size": 28, "color_mode": "grayscale", "warnings": []}
    assert launched(alice_api, marks, "cnn") == {"image_size": 40, "color_mode": "grayscale", "warnings": []}

    # What the caller chose wins; grayscale where colour tells the classes apart starts, with a warning.
    assert launched(alice_api, paint, "lenet5", image_size=20, color_mode="grayscale") == {
        "image_size": 20, "color_mode": "grayscale", "warnings": [GRAYSCALE_WARNING]}
    assert launched(alice_api, marks, "lenet5", color_mode="grayscale")["warnings"] == []

    # A dataset read before these statistics existed: its stored colour modes and size histogram.
    older = Dataset.objects.create(owner=alice, name="older", kind="classification", status="ready", num_items=4,
                                   classes=[{"name": "a", "count": 2}, {"name": "b", "count": 2}],
                                   stats={"modes": {"RGB": 4}, "image_sizes": {
                                       "widths": {"bins": [300, 301], "counts": [4]},
                                       "heights": {"bins": [200, 201], "counts": [4]}}})
    assert launched(alice_api, older, "cnn") == {"image_size": 128, "color_mode": "rgb", "warnings": []}
    assert launched(alice_api, older, "lenet5") == {"image_size": 28, "color_mode": "rgb", "warnings": []}

    # Another user's dataset is not there for anyone else.
    answer = bob_api.post("/api/jobs/", {"kind": "train", "dataset": paint.id, "architecture": "lenet5"}, format="json")
    assert answer.status_code == 400 and "no dataset with this id" in str(answer.json())
