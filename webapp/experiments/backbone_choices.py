"""What `params.backbone` may name, checked in the web process (which never imports TensorFlow).

A backbone is a built-in Keras application, a feature extractor the user uploaded
(`backbones/<id>`) or a classifier the user trained (`models/<id>`, its penultimate layer).
Validation resolves the name to what a launch form and a job record need: the input size and
colour mode the backbone reads, and whether its layers can be fine-tuned (its format says:
`jobs.ml.formats`; built-ins and trained classifiers are Keras models).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rest_framework import serializers

from jobs.ml import formats  # names and flags only: no TensorFlow
from jobs.ml.catalog import BUILTIN_BACKBONES, imagenet_weights_file  # plain catalogue: no TensorFlow
from webapp.experiments.models import Backbone, TrainedModel

WEIGHTS = ("imagenet", "random")


@dataclass(frozen=True)
class BackboneChoice:
    key: str  # as written in params.backbone
    label: str  # for forms and job pages
    image_size: int
    channels: int
    fine_tunes: bool  # its format's weights can be trained (a Keras model, not a TFLite one)
    has_weights_choice: bool  # built-ins only: "imagenet" or "random"


def _builtin(name: str, spec: dict) -> BackboneChoice:
    width = "x".join(str(v) for v in spec["feature_shape"])
    label = f"{spec['title']} · {width} features per photo at {spec['image_size']}x{spec['image_size']}"
    return BackboneChoice(name, label, spec["image_size"], spec["channels"], formats.KerasFormat.fine_tunes, True)


BUILTIN: dict[str, BackboneChoice] = {name: _builtin(name, spec) for name, spec in BUILTIN_BACKBONES.items()}


def resolve(key: str, user) -> BackboneChoice:
    """The backbone `key` names for `user`, or a ValidationError with a sentence.

    Someone else's uploaded backbone or model answers exactly like one that does not exist.
    """
    key = (key or "").strip()
    if key in BUILTIN:
        return BUILTIN[key]
    kind, _, ident = key.partition("/")
    if kind in ("backbones", "models") and ident.isdigit():
        if kind == "backbones":
            found = Backbone.objects.filter(id=int(ident), owner=user).first()
            if found:
                return BackboneChoice(key, f"{found.name} (uploaded, {found.output_dim} numbers per photo)",
                                      found.input_size, found.channels, found.model_format.fine_tunes, False)
            raise serializers.ValidationError(f"You have no uploaded backbone with id {ident}.")
        model = TrainedModel.objects.filter(id=int(ident), owner=user, task=TrainedModel.Task.CLASSIFY).first()
        if model:
            return BackboneChoice(key, f"{model.name} (your model #{model.id}, its last hidden layer)",
                                  model.image_size, model.channels, formats.KerasFormat.fine_tunes, False)
        raise serializers.ValidationError(f"You have no trained classifier with id {ident}.")
    raise serializers.ValidationError(
        f"There is no backbone called {key!r}. Use one of {', '.join(BUILTIN)}, backbones/<id> for one you "
        "uploaded, or models/<id> for a classifier you trained.")


def weights_file(name: str) -> Path:
    """Where a built-in's ImageNet weights sit in the Keras cache, as Keras looks for them
    ($KERAS_HOME/models/, which the settings place under DATA_DIR unless it is set)."""
    home = os.environ.get("KERAS_HOME") or Path("~/.keras").expanduser()
    return Path(home) / "models" / imagenet_weights_file(name)


def weights_present(name: str) -> bool:
    """Whether a job could start on this built-in's ImageNet weights without downloading them: a job
    that must download them fails after a few seconds on a server without internet."""
    return weights_file(name).is_file()


def choices_for(user) -> list[BackboneChoice]:
    """Every backbone `user` may pick, built-ins first, for the launch forms."""
    mine = [resolve(b.key, user) for b in Backbone.objects.filter(owner=user)]
    models = [resolve(f"models/{m.id}", user)
              for m in TrainedModel.objects.filter(owner=user, task=TrainedModel.Task.CLASSIFY)[:50]]
    return [*BUILTIN.values(), *mine, *models]
