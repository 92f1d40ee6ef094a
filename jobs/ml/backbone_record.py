"""The `Backbone` record: what a backbone is, as plain data (workflow 3 in PRODUCT.md).

A small frozen record (what it is, which layer the features come from, which weights, what input
it takes) that the feature cache keys on and a trained transfer model remembers, so it holds
nothing that cannot be written to JSON. `jobs.ml.backbones` makes and runs them (and is where the
rest of VisionLab imports `Backbone` from); the record lives here, below the format registry
(`jobs.ml.formats`) and the runtimes (`jobs.ml.keras_runtime`, `jobs.ml.tflite_runtime`) that
name it, so none of them has to import `jobs.ml.backbones` back.

Plain Python: no Keras or TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from jobs.ml.catalog import BUILTIN_BACKBONES
from jobs.ml.scaling import RAW, InputScaling


@dataclass(frozen=True)
class Backbone:
    name: str  # "vgg16" | "vgg16_conv" | "mobilenet_v2" | "backbones/<id>" | "models/<id>"
    layer: str  # layer (or "outer/inner" path in nested models) or TFLite tensor the features come from
    weights: str  # "imagenet" | "random" | "sha256:<hex of the file>"
    image_size: int  # square input side in px
    channels: int  # 1 or 3
    feature_shape: tuple[int, ...]  # e.g. (4096,), (4, 4, 512), (1280,)
    kind: str  # the runtime: a jobs.ml.formats kind, "keras" | "tflite"
    source: str = ""  # the model file for uploaded and trained backbones, "" for builtins
    scaling: InputScaling = RAW  # how 0..255 pixels become the model's input (builtins rescale inside: raw)

    @property
    def feature_dim(self) -> int:
        return math.prod(self.feature_shape)

    @property
    def title(self) -> str:
        """How progress messages name it: "VGG16", "MobileNetV2", or the name it was given."""
        spec = BUILTIN_BACKBONES.get(self.name)
        return spec["title"] if spec else self.name

    def cache_key(self) -> dict:
        """What features depend on: the backbone, its layer, its weights, the input side and scaling."""
        return {"backbone": self.name, "layer": self.layer, "weights": self.weights, "image_size": self.image_size,
                "input": self.scaling.to_dict()}

    def to_dict(self) -> dict:
        """JSON-ready; `from_dict` reverses it (a transfer model's metadata stores its backbone this way)."""
        return {"name": self.name, "layer": self.layer, "weights": self.weights, "image_size": self.image_size,
                "channels": self.channels, "feature_shape": list(self.feature_shape), "kind": self.kind,
                "source": self.source, "scaling": self.scaling.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> Backbone:
        return cls(name=data["name"], layer=data["layer"], weights=data["weights"],
                   image_size=int(data["image_size"]), channels=int(data["channels"]),
                   feature_shape=tuple(int(v) for v in data["feature_shape"]), kind=data["kind"],
                   source=data.get("source", ""), scaling=InputScaling.from_dict(data.get("scaling")))
