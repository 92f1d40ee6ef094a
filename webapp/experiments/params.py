"""Every tunable parameter of every job kind, declared once.

A declaration says what a parameter is (type, default, range or choices, unit), what it means
(label, help) and whether a sweep may vary it. From it come the API serializers (and so the
OpenAPI docs), the launch forms' inputs with their defaults and limits (`{% param_input %}`, or
whole fields by group with `{% param_group %}`, which the form scripts send without a list),
the labels of the compare page's parameter table, and `GET /api/params/`, which a sweep's
search space is checked against. Adding a parameter is one line here plus its use in `jobs/ml`.

Parameters that need a lookup (the dataset, the architecture, the backbone) stay hand-written
fields of the serializers in `kinds.py`: they are references, not numbers to tune.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from rest_framework import serializers

from webapp.jobs import registry

Type = Literal["int", "float", "bool", "choice"]


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
    # The launch form's group ("training", "model", ...) that draws it by itself with
    # `{% param_group %}`; "" for the fields a form lays out by hand (with `{% param_input %}`).
    group: str = ""

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


@dataclass(frozen=True)
class Declaration:
    """The declared parameters of one job kind, in form order."""

    params: tuple[Param, ...] = field(default_factory=tuple)

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


SEED = Param("seed", "int", 0, "Random seed", "The same seed, data and settings give the same run.",
             min=0, max=2**31 - 1, sweep=True)

TRAIN = Declaration((
    Param("image_size", "int", None, "Image size", "Square side every image is resized to; if left out, the "
          "dataset's typical side within the architecture's limits.", unit="px", min=8, max=1024, optional=True,
          sweep=True),
    Param("color_mode", "choice", None, "Colours", "Grayscale or RGB input; if left out, RGB when the dataset's "
          "images are in colour or its classes differ by colour.", choices=("grayscale", "rgb"), optional=True),
    Param("epochs", "int", 10, "Epochs", "Passes over the training images.", unit="epochs", min=1, max=1000,
          sweep=True),
    Param("batch_size", "int", 32, "Batch size", "Images per training step.", unit="images", min=1, max=4096,
          sweep=True),
    Param("optimizer", "choice", "adam", "Optimizer", "How the weights follow the gradient.",
          choices=("adam", "sgd", "rmsprop"), sweep=True),
    Param("learning_rate", "float", 0.001, "Learning rate", "Step size of the optimizer.", min=1e-7, max=10.0,
          sweep=True, log=True),
    Param("augment_flip", "bool", False, "Flip left-right", "Mirror training images at random.", sweep=True),
    Param("augment_rotation", "float", 0.0, "Rotation", "Rotate training images at random by up to this "
          "fraction of a full turn.", unit="turns", min=0.0, max=0.5, sweep=True, step="0.05"),
    Param("augment_zoom", "float", 0.0, "Zoom", "Zoom training images in or out at random by up to this "
          "fraction.", min=0.0, max=0.5, sweep=True, step="0.05"),
    Param("early_stopping", "int", None, "Early stopping", "Stop after this many epochs without a better "
          "validation loss; off when empty.", unit="epochs", min=1, max=100, nullable=True,
          optional=True, sweep=True),
    Param("keep_best", "bool", True, "Keep the best epoch", "Save the model as it was at the epoch with the "
          "lowest validation loss; off: as it is after the last epoch.", group="training"),
    Param("mode", "choice", "extract", "Transfer mode", "Transfer models: train the head on cached features "
          "(extract) or also the last block (finetune).", choices=("extract", "finetune"), sweep=True),
    SEED,
))

# Defaults: jobs.ml.captioning.CaptionConfig, measured on real features (its docstring has the table).
CAPTION = Declaration((
    Param("epochs", "int", 30, "Epochs", "At most this many epochs; early stopping usually ends sooner.",
          unit="epochs", min=1, max=500, sweep=True),
    Param("batch_size", "int", 128, "Batch size", "Caption prefixes per training step.", unit="samples", min=1,
          max=4096, sweep=True),
    Param("learning_rate", "float", 0.001, "Learning rate", "Step size of Adam.", min=1e-7, max=1.0, sweep=True,
          log=True),
    Param("min_word_count", "int", 1, "Rarest word kept", "Words seen fewer times in the training captions are "
          "dropped.", unit="times", min=1, max=1000, sweep=True),
    Param("max_length", "int", None, "Longest caption", "Longest caption in words, start and end marks included; "
          "default: the longest training caption.", unit="words", min=3, max=100, nullable=True, optional=True),
    Param("beam_width", "int", 3, "Beam width", "Captions kept at each step of beam search.", min=1, max=10,
          sweep=True),
    Param("units", "int", 256, "Model width", "Width of the word embedding, the LSTM and the dense layers "
          "(PRODUCT.md's merge model: 256).", unit="units", min=8, max=1024, sweep=True, group="model"),
    Param("dropout", "float", 0.5, "Dropout", "Fraction of activations dropped while training.", min=0.0, max=0.9,
          sweep=True, step="0.05", group="model"),
    Param("early_stopping", "int", 5, "Early stopping", "Stop after this many epochs without a better validation "
          "loss (the best epoch is kept); null: run every epoch.", unit="epochs", min=1, max=100, nullable=True,
          sweep=True),
    SEED,
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

# {job kind: its declaration}, from each registered kind's `declaration` (webapp.jobs.kinds).
DECLARATIONS = registry.DeclarationsView()
