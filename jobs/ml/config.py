"""The settings of a training run, and where each one comes from in a job's params.

The ML core's configs (`TrainConfig` for zoo models, `TransferConfig` for heads on a backbone,
`CaptionConfig` for the merge caption model) are the one place a training default is written.
They live here, apart from the modules that train, because both sides read them: the workers
build a config from a job's params (`from_params`), and the web's parameter declarations
(`webapp.experiments.params`) take each tunable parameter's default from the config field it
fills, so the API, its docs, the launch forms and the sweeps show the default training uses.
That direction (declarations read the configs) keeps the ML core free of labels and help texts
and usable from a script with its defaults; the web adds what a person reads.

A config field fills from the job param of the same name; `param("other")` names another param
(`early_stopping` fills `early_stopping_patience`), with a conversion where the API speaks a
person's word (`color_mode` "grayscale" is 1 channel). Nothing here imports TensorFlow, Django or
the web: the web process reads it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

Config = TypeVar("Config")


def param(name: str, *, convert: Callable[[Any], Any] | None = None, **options) -> Any:
    """A config field that fills from job param `name` (through `convert`, when given)."""
    return dataclasses.field(metadata={"param": name, "convert": convert}, **options)


def param_name(field: dataclasses.Field) -> str:
    """The job param that fills a config field."""
    return field.metadata.get("param", field.name)


def param_fields(cls: type) -> dict[str, dataclasses.Field]:
    """{job param: the field of config `cls` it fills} (the first, where two read one param)."""
    found: dict[str, dataclasses.Field] = {}
    for field in dataclasses.fields(cls):
        found.setdefault(param_name(field), field)
    return found


def from_params(cls: type[Config], params: Mapping[str, Any], **refs) -> Config:
    """`cls` with every field whose param is in `params` taken from there; `refs` (values the
    job looked up, not params) win; the rest keep their defaults. Keys that no field reads
    (the dataset, the backbone) are left alone."""
    values = {}
    for field in dataclasses.fields(cls):
        name = param_name(field)
        if name in params:
            convert = field.metadata.get("convert")
            values[field.name] = convert(params[name]) if convert else params[name]
    return cls(**{**values, **refs})


def channels_of(color_mode: str) -> int:
    return 1 if color_mode == "grayscale" else 3


@dataclass(kw_only=True)
class Seeded:
    seed: int = 0  # the same seed, data and settings give the same run


@dataclass(kw_only=True)
class FitConfig(Seeded):
    """What zoo models and transfer heads share: how long and how they fit, and what is kept."""

    epochs: int = 10
    batch_size: int = 32
    optimizer: str = "adam"  # "adam" | "sgd" (momentum 0.9) | "rmsprop"
    learning_rate: float = 1e-3
    augment_flip: bool = False
    augment_rotation: float = 0.0  # fraction of a full turn, as keras.layers.RandomRotation
    augment_zoom: float = 0.0
    early_stopping_patience: int | None = param("early_stopping", default=None)  # on val_loss
    keep_best: bool = True  # save the weights of the epoch with the lowest val_loss, not the last epoch's


@dataclass
class TrainConfig(FitConfig):
    architecture: str
    image_size: int  # square side in px
    channels: int = param("color_mode", convert=channels_of)  # 1 (grayscale) or 3 (rgb)


# A fine-tuned backbone needs other defaults than a head on fixed features: large steps would wreck
# the pretrained weights, and fine-tuning overfits a small dataset without flips. The API applies
# them to what a launch leaves out (webapp.experiments.kinds.train), a TransferConfig to what it is not given.
MODE_DEFAULTS: dict[str, dict[str, Any]] = {"extract": {}, "finetune": {"learning_rate": 1e-5, "augment_flip": True}}


@dataclass(kw_only=True)
class TransferConfig(FitConfig):
    mode: str = "extract"  # "extract" (head on cached features) | "finetune" (last block + head on images)
    learning_rate: float | None = None  # None: the mode's (MODE_DEFAULTS), else FitConfig's
    augment_flip: bool | None = None  # the same; only fine-tuning augments (extract trains on fixed features)
    architecture: str = "transfer"  # the name recorded in the metadata: transfer, vgg16_transfer, ...

    def __post_init__(self):
        shared = {f.name: f.default for f in dataclasses.fields(FitConfig)}
        for name in ("learning_rate", "augment_flip"):
            if getattr(self, name) is None:
                setattr(self, name, MODE_DEFAULTS.get(self.mode, {}).get(name, shared[name]))


@dataclass(kw_only=True)
class CaptionConfig(Seeded):
    """Training settings. The defaults were measured on real features: the published quantized MobileNet
    v1 0.5's 512-d pool of 1,000 generated shapes pictures (700 train, 150 val, 150 test; 3,500 training
    captions, 50,148 samples an epoch), changing one setting at a time, each run to its early stop
    (`bench/captioning.py --sweep --images 1000 --epochs 30`, 2 shared CPU cores; samples/s are noisy):

    | change from the defaults | epochs run | best epoch | best val_loss | BLEU-4 greedy | beam | s |
    |---|---|---|---|---|---|---|
    | none (batch 128, Adam 1e-3, dropout 0.5, units 256) | 19 | 14 | 0.665 | 0.529 | 0.531 | 501 |
    | the same, model seed 1 | 21 | 16 | 0.663 | 0.532 | | 489 |
    | learning rate 3e-4 | 30 | 30 (still falling) | 0.658 | 0.564 | 0.546 | 1036 |
    | learning rate 3e-3 | 16 | 11 | 0.681 | 0.511 | 0.502 | 389 |
    | batch 64 (seeds 0 and 1) | 19, 16 | 14, 11 | 0.656, 0.658 | 0.541, 0.496 | 0.548 | 458, 341 |
    | batch 256 | 28 | 23 | 0.660 | 0.551 | 0.552 | 573 |
    | dropout 0.2 | 17 | 12 | 0.650 | 0.514 | 0.521 | 415 |
    | dropout 0 | 14 | 9 | 0.670 | 0.508 | 0.525 | 396 |
    | units 128 (embedding 128) | 30 | 30 (still falling) | 0.654 | 0.546 | 0.570 | 160 |

    The always-the-most-common-caption baseline scores BLEU-4 0.107 there; a reader that gets every
    colour, shape, size and position right and decodes greedily scores about 0.63 (the captions'
    synonyms and word orders are random, so no caption matches all references' 4-grams). Across two
    seeds BLEU-4 moves by about 0.04 at the same settings, so most rows tie. Hence: Adam 1e-3 (3e-4
    is no better within that noise and needs twice the epochs; 3e-3 is worse); batch 128 (64 ties
    and takes more steps; 256 needs more epochs); dropout 0.5 (less dropout lowers val_loss but not
    BLEU); 30 epochs at most, which early stopping ends near 20 here; patience 5 (the longest wait
    between improvements seen was 3 epochs; 5 leaves a margin for about 2 extra epochs). Units stay
    at PRODUCT.md's 256: 128 did as well on this 56-word vocabulary in a third of the time, but a
    Flickr8k-sized vocabulary (7,579 words) is what the reference width is for, and this set cannot
    measure that; `units` narrows the model per job.
    """

    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 1e-3  # Adam
    min_word_count: int = 1  # words rarer than this in the training captions are dropped
    max_length: int | None = None  # None: the longest training caption in tokens (with startseq/endseq), capped at 40
    units: int = 256
    embedding_dim: int | None = None  # None: `units` (the API sets one width for both)
    dropout: float = 0.5
    beam_width: int = 3
    # Epochs without a better val_loss before stopping; None or 0: run every epoch.
    early_stopping_patience: int | None = param("early_stopping", default=5)

    def __post_init__(self):
        if self.embedding_dim is None:
            self.embedding_dim = self.units
