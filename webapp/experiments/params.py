"""Every tunable parameter of every job kind, declared once.

A declaration says what a parameter is (type, default, range or choices, unit), what it means
(label, help) and whether a sweep may vary it. From it come the API serializers (and so the
OpenAPI docs), the launch forms (`templates/experiments/launch.html` draws every field of a kind
by its form group with `{% param_group %}`: label, hint, input with its default and limits; the
form scripts send them by type, without a list), the labels of the compare page's parameter
table, and `GET /api/params/`, which a sweep's search space is checked against.

A training parameter's default is not written here: it is the default of the `jobs.ml.config`
field the parameter fills (declared `CONFIG`), which is also what a worker's `from_params` builds
the run's config from, so the web and the worker cannot disagree on a default or on which field a
parameter reaches. The declarations read the configs, not the other way round: the ML core keeps
its defaults (and the measurements behind them) without knowing about labels, forms or the API.
Adding a training parameter is a field in its `jobs.ml.config` class plus one `Param` line here.

Parameters that need a lookup (the dataset, the architecture, the backbone) stay hand-written
fields of the serializers in `kinds.py`: they are references, not numbers to tune.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from rest_framework import serializers

from jobs.ml.config import CaptionConfig, TrainConfig, TransferConfig, param_fields
from webapp.jobs import registry

Type = Literal["int", "float", "bool", "choice"]


class _FromConfig:
    def __repr__(self) -> str:
        return "CONFIG"


# A Param's default that is the default of the jobs.ml config field it fills (see Declaration.configs).
CONFIG: Any = _FromConfig()


@dataclass(frozen=True)
class Param:
    name: str
    type: Type
    default: Any
    label: str
    help: str = ""
    unit: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    sweep: bool = False  # a sweep may vary it
    log: bool = False  # a sweep samples it on a log scale (learning rates)
    nullable: bool = False  # None is a value ("off")
    optional: bool = False  # no default: the job decides (e.g. per architecture)
    step: str = ""  # the form's step; "" = 1 for ints, "any" for floats
    # How a launch form draws it: in which group ("input", "training", "augmentation", "model",
    # "words", "run"; `{% param_group %}` draws each declared parameter of a group, in order), with
    # what hint (None: `help`; "": none; the form prefills values, so the API's "if left out" would
    # not read right there), the unit beside its label (floats add their range), the words of its
    # choices, and for a parameter a checkbox turns on (`toggle`), the sentence around its number
    # ("after {} epochs ...") and the value proposed when it is off by default.
    group: str = ""
    hint: str | None = None
    form_unit: bool = False
    choice_labels: tuple[str, ...] = ()
    placeholder: str = ""
    toggle: str = ""
    inline: str = ""
    suggest: Any = None

    def field(self) -> serializers.Field:
        """The DRF field that validates it (its help and limits go to the API docs too)."""
        help_text = f"{self.help} ({self.unit})" if self.unit and self.help else self.help
        options: dict[str, Any] = {"help_text": help_text or None}
        if self.optional:
            options["required"] = False
        else:
            options["default"] = self.default
        if self.nullable:
            options["allow_null"] = True
        if self.type == "choice":
            return serializers.ChoiceField(choices=list(self.choices), **options)
        if self.type == "bool":
            return serializers.BooleanField(**options)
        limits = {k: v for k, v in (("min_value", self.min), ("max_value", self.max)) if v is not None}
        if self.type == "int":
            return serializers.IntegerField(**limits, **options)
        return serializers.FloatField(**limits, **options)

    def to_dict(self) -> dict:
        data = {"name": self.name, "type": self.type, "default": self.default, "label": self.label,
                "help": self.help, "unit": self.unit, "sweep": self.sweep, "nullable": self.nullable}
        if self.type in ("int", "float"):
            data.update(min=self.min, max=self.max, log=self.log)
        if self.choices:
            data["choices"] = list(self.choices)
        return data

    @property
    def input_step(self) -> str:
        return self.step or ("1" if self.type == "int" else "any")

    @property
    def form_hint(self) -> str:
        return self.help if self.hint is None else self.hint

    @property
    def choice_options(self) -> list[tuple[str, str]]:
        """(value, words) of each choice, as the form's <select> shows them."""
        return list(zip(self.choices, self.choice_labels or self.choices, strict=True))

    @property
    def unit_text(self) -> str:
        """What the form writes beside the label: the unit, and a fraction's range ("turns, 0–0.5")."""
        if not self.form_unit:
            return ""
        if self.type == "float" and self.min is not None and self.max is not None:
            bounds = f"{self.min:g}–{self.max:g}"
            return f"{self.unit}, {bounds}" if self.unit else bounds
        return self.unit


@dataclass(frozen=True)
class FormGroup:
    """A titled group of a launch form's Advanced section: the parameters declared with its name.
    `note` is the id of a line the page's script fills (the train form says there what a backbone sets)."""

    name: str
    title: str
    help: str = ""
    note: str = ""


@dataclass(frozen=True)
class Declaration:
    """The declared parameters of one job kind, in form order."""

    params: tuple[Param, ...] = field(default_factory=tuple)
    # The jobs.ml configs a job of this kind builds from its params (jobs.ml.config.from_params).
    configs: tuple[type, ...] = ()
    # The launch form's Advanced groups, in order (templates/experiments/launch.html); "run" (the
    # seed, with the queue) closes every form, and a page may draw another group where it belongs.
    form_groups: tuple[FormGroup, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "params", tuple(map(self._with_default, self.params)))

    def _with_default(self, param: Param) -> Param:
        """`param` with the default of the first config field it fills, when declared CONFIG; a field
        with no default (a value the launch fills, like the image size) makes None."""
        if param.default is not CONFIG:
            return param
        for config in self.configs:
            found = param_fields(config).get(param.name)
            if found is not None:
                default = None if found.default is dataclasses.MISSING else found.default
                return dataclasses.replace(param, default=default)
        raise LookupError(f"Parameter {param.name!r} takes its default from a config, but none of "
                          f"{[c.__name__ for c in self.configs]} has a field it fills.")

    def __getitem__(self, name: str) -> Param:
        for param in self.params:
            if param.name == name:
                return param
        raise KeyError(name)

    def __contains__(self, name: str) -> bool:
        return any(p.name == name for p in self.params)

    def serializer_base(self, name: str) -> type[serializers.Serializer]:
        """A Serializer class with one field per parameter, for a kind's serializer to extend."""
        metaclass = type(serializers.Serializer)  # DRF's, which collects the declared fields
        return metaclass(name, (serializers.Serializer,), {p.name: p.field() for p in self.params})


SEED = Param("seed", "int", CONFIG, "Random seed", "The same seed, data and settings give the same run.",
             min=0, max=2**31 - 1, sweep=True, group="run")

EARLY_STOPPING = "Stop early when the validation loss stops improving"

TRAIN = Declaration((
    Param("image_size", "int", CONFIG, "Image size", "Square side every image is resized to; if left out, the "
          "dataset's typical side within the architecture's limits.", unit="px", min=8, max=1024, optional=True,
          sweep=True, group="input", hint="Every image is resized to this square.", form_unit=True,
          placeholder="from the dataset"),
    Param("color_mode", "choice", CONFIG, "Colour mode", "Grayscale or RGB input; if left out, RGB when the "
          "dataset's images are in colour or its classes differ by colour.", choices=("grayscale", "rgb"),
          optional=True, group="input", hint="", choice_labels=("Grayscale (1 channel)", "Colour, RGB (3 channels)")),
    Param("epochs", "int", CONFIG, "Epochs", "Passes over the training images.", unit="epochs", min=1, max=1000,
          sweep=True, group="training"),
    Param("batch_size", "int", CONFIG, "Batch size", "Images per training step.", unit="images", min=1, max=4096,
          sweep=True, group="training", hint="Images per step; lower it if memory runs out."),
    Param("optimizer", "choice", CONFIG, "Optimizer", "How the weights follow the gradient.",
          choices=("adam", "sgd", "rmsprop"), sweep=True, group="training", hint="",
          choice_labels=("Adam", "SGD", "RMSprop")),
    Param("learning_rate", "float", CONFIG, "Learning rate", "Step size of the optimizer.", min=1e-7, max=10.0,
          sweep=True, log=True, group="training", hint=""),
    Param("augment_flip", "bool", CONFIG, "Flip left–right", "Mirror training images at random.", sweep=True,
          group="augmentation", hint="Not for digits or text."),
    Param("augment_rotation", "float", CONFIG, "Rotation", "Rotate training images at random by up to this "
          "fraction of a full turn.", unit="turns", min=0.0, max=0.5, sweep=True, step="0.05",
          group="augmentation", hint="", form_unit=True),
    Param("augment_zoom", "float", CONFIG, "Zoom", "Zoom training images in or out at random by up to this "
          "fraction.", min=0.0, max=0.5, sweep=True, step="0.05", group="augmentation", hint="", form_unit=True),
    Param("early_stopping", "int", CONFIG, "Early stopping", "Stop after this many epochs without a better "
          "validation loss; off when empty.", unit="epochs", min=1, max=100, nullable=True,
          optional=True, sweep=True, group="training", toggle=EARLY_STOPPING,
          inline="after {} epochs without a better one", suggest=3),
    Param("keep_best", "bool", CONFIG, "Keep the best epoch", "Save the model as it was at the epoch with the "
          "lowest validation loss; off: as it is after the last epoch.", group="training"),
    Param("mode", "choice", CONFIG, "Mode", "Transfer models: train the head on cached features "
          "(extract) or also the last block (finetune).", choices=("extract", "finetune"), sweep=True,
          group="transfer", choice_labels=("Extract: only the head learns (fast)",
                                                    "Fine-tune: the last block learns too (slow)")),
    SEED,
# TrainConfig first: a TransferConfig's learning rate depends on its mode. The "transfer" group (the
# mode) sits in the form's backbone panel rather than under Advanced.
), configs=(TrainConfig, TransferConfig), form_groups=(
    FormGroup("input", "Input", note="input-from-backbone"),
    FormGroup("training", "Training"),
    FormGroup("augmentation", "Augmentation", "Random changes to the training images on every epoch, so the model "
              "sees more variety. Validation and test images are never changed."),
))

# Defaults: jobs.ml.config.CaptionConfig's, measured on real features (its docstring has the table).
CAPTION = Declaration((
    Param("epochs", "int", CONFIG, "Epochs", "At most this many epochs; early stopping usually ends sooner.",
          unit="epochs", min=1, max=500, sweep=True, group="training", hint="Passes over every training caption."),
    Param("batch_size", "int", CONFIG, "Batch size", "Caption prefixes per training step.", unit="samples", min=1,
          max=4096, sweep=True, group="training", hint="Next-word examples per step."),
    Param("learning_rate", "float", CONFIG, "Learning rate", "Step size of Adam.", min=1e-7, max=1.0, sweep=True,
          log=True, group="training", hint="Adam's step size."),
    Param("min_word_count", "int", CONFIG, "Minimum word count", "Words seen fewer times in the training captions "
          "are left out of the vocabulary.", unit="times", min=1, max=1000, sweep=True, group="words"),
    Param("max_length", "int", CONFIG, "Longest caption", "Longest caption in words, start and end marks included; "
          "default: the longest training caption.", unit="words", min=3, max=100, nullable=True, optional=True,
          group="words", hint="Start and end marks included. Empty: the longest training caption.", form_unit=True,
          placeholder="automatic"),
    Param("beam_width", "int", CONFIG, "Beam width", "Captions kept at each step of beam search.", min=1, max=10,
          sweep=True, group="words", hint="Sentences beam search keeps at each word when scoring; 1 is greedy."),
    Param("units", "int", CONFIG, "Model width", "Width of the word embedding, the LSTM and the dense layers "
          "(PRODUCT.md's merge model: 256).", unit="units", min=8, max=1024, sweep=True, group="model"),
    Param("dropout", "float", CONFIG, "Dropout", "Fraction of activations dropped while training.", min=0.0, max=0.9,
          sweep=True, step="0.05", group="model"),
    Param("early_stopping", "int", CONFIG, "Early stopping", "Stop after this many epochs without a better validation "
          "loss (the best epoch is kept); null: run every epoch.", unit="epochs", min=1, max=100, nullable=True,
          sweep=True, group="training", toggle=EARLY_STOPPING,
          inline="after {} epochs without a better one (the best epoch is kept)"),
    SEED,
), configs=(CaptionConfig,), form_groups=(
    FormGroup("training", "Training"), FormGroup("model", "Model"), FormGroup("words", "Words"),
))

FEATURES = Declaration((
    Param("batch_size", "int", 32, "Batch size", "Images per step of the backbone.", unit="images", min=1,
          max=1024),
    Param("precision", "choice", "auto", "Precision", "auto: bfloat16 on CPUs that compute it natively, mixed "
          "precision on GPUs, else float32.", choices=("auto", "float32", "bfloat16")),
))

SYSTEM_CHECK = Declaration((
    Param("seconds_per_device", "float", 2.0, "Seconds per device", "How long to measure matrix-multiply speed "
          "on each device.", unit="s", min=0.2, max=30.0),
))

# Feature extraction and the system check have no config class: their jobs read these params as they are.

# {job kind: its declaration}, from each registered kind's `declaration` (webapp.jobs.registry).
DECLARATIONS = registry.DeclarationsView()
