"""A training run's input defaults, read from its dataset: image size, colour mode, and when grayscale hurts.

An architecture's own defaults (LeNet-5: 28 px grayscale; the conv net: 128 px colour) suit the data it
was made for and nothing else: colour photos fed to LeNet-5 in grayscale lose the colour that may be
all that tells their classes apart, and 64-pixel pictures enlarged to 128 cost four times the compute
for no new detail. So when a launch leaves `image_size` or `color_mode` out, they come from the
dataset (what ingestion measured, `Dataset.stats`):

- image size: the dataset's typical side (the median longer side), at least the architecture's
  smallest size and at most its proposed one (`Architecture.default_image_size`, chosen for cost);
- colour mode: RGB when most images are in colour or colour is what separates the classes, else
  grayscale.

The Train form applies the same rule in the browser (static/js/train.js, `datasetInput`) as soon as a
dataset is picked, and both warn when grayscale is chosen for classes that differ by colour.
Datasets read before these statistics existed fall back on their stored colour modes and size
histograms.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs.ml.catalog import ARCHITECTURES, Architecture

GRAYSCALE_WARNING = "These classes differ by colour; grayscale input throws that away. Choose Colour (RGB)."

# Pillow modes whose pixels carry colour; a dataset mostly in these is read as colour when ingestion
# did not measure the colour itself (datasets read before it did).
COLOUR_MODES = {"RGB", "RGBA", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"}


@dataclass(frozen=True)
class DatasetInput:
    """What a dataset says about the input a model should take."""

    side: int | None  # typical image side in px; None when unknown
    colour: bool | None  # its images are (mostly) in colour; None when unknown
    differs_by_colour: bool  # colour tells its classes apart and gray levels do not

    @property
    def color_mode(self) -> str | None:
        """"rgb" or "grayscale"; None when unknown (the architecture's own default then applies)."""
        if self.differs_by_colour or self.colour:
            return "rgb"
        return None if self.colour is None else "grayscale"


def dataset_input(dataset) -> DatasetInput:
    """What `dataset` (a Dataset row) says about the input, from the statistics ingestion stored."""
    stats = dataset.stats or {}
    colour = stats.get("colour") or {}
    modes = stats.get("modes") or {}
    if "colourful_share" in colour:
        in_colour = colour["colourful_share"] >= 0.5
    elif modes:
        in_colour = sum(n for m, n in modes.items() if m in COLOUR_MODES) * 2 >= sum(modes.values())
    else:
        in_colour = None
    return DatasetInput(side=_side(stats), colour=in_colour, differs_by_colour=bool(colour.get("differs_by_colour")))


def _side(stats: dict) -> int | None:
    """The stored typical side, or (older datasets) the middle of the commonest width and height bins."""
    if isinstance(stats.get("typical_side"), int):
        return stats["typical_side"]
    sides = []
    for axis in ("widths", "heights"):
        histogram = (stats.get("image_sizes") or {}).get(axis) or {}
        bins, counts = histogram.get("bins") or [], histogram.get("counts") or []
        if counts and len(bins) > len(counts):
            i = max(range(len(counts)), key=counts.__getitem__)
            sides.append((bins[i] + bins[i + 1] - 1) // 2)
    return max(sides) if sides else None


def image_size_for(arch: Architecture, side: int | None) -> int:
    """The dataset's side within the architecture's limits; the architecture's proposal when unknown."""
    if side is None:
        return arch.default_image_size
    return max(arch.min_image_size, min(side, arch.default_image_size))


def fill_input(attrs: dict, arch: Architecture, dataset) -> None:
    """Set `image_size` and `color_mode` where a launch left them out (a from-scratch architecture)."""
    if "image_size" in attrs and "color_mode" in attrs:
        return
    found = dataset_input(dataset)
    attrs.setdefault("image_size", image_size_for(arch, found.side))
    attrs.setdefault("color_mode", found.color_mode or ("grayscale" if arch.default_channels == 1 else "rgb"))


def launch_warnings(kind: str, params: dict, dataset) -> list[str]:
    """Sentences about a valid launch that will likely disappoint: grayscale input for classes that
    differ by colour. The API returns them with the new job; the Train form says them before Start."""
    if kind != "train" or dataset is None or params.get("color_mode") != "grayscale":
        return []
    arch = ARCHITECTURES.get(params.get("architecture"))
    if arch is None or arch.uses_backbone or not dataset_input(dataset).differs_by_colour:
        return []
    return [GRAYSCALE_WARNING]
