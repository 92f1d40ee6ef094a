"""Model file formats: one class per format, and the registry that answers "which format is this".

An uploaded backbone is a `.keras` zip, a Keras HDF5 `.h5` or a TensorFlow Lite `.tflite` file.
Everything that depends on which one it is lives on its class here, the way Pillow keeps each image
format in a plugin class that one line registers: its name (stored in `Backbone.format` and API
answers), suffixes and labels, its signature (the first bytes that say a file really is one), and
what running it takes (inspection, the input scaling it asks for, feature extraction, the sanity
check's runners) and allows (fine-tuning, joining a Keras head in one exportable graph). Nothing
else in VisionLab compares format names: it asks the registry (`by_name`, `by_filename`, `by_kind`,
`identify`, `of_backbone`) and reads the answer's flags.

Two names per format: `name` is the file format, `kind` the runtime a `Backbone` record
(`jobs.ml.backbone_record`, imported from `jobs.ml.backbones`) names (both Keras files run as
"keras"; the records of builtins and trained models say "keras" too). Records and metadata already
written keep both.

The code that opens and runs the files lives in one runtime module per kind, which the classes
here call: `jobs.ml.keras_runtime` (loading, finding and cutting layers, the extractor, the
ImageNet classifier) and `jobs.ml.tflite_runtime` (the interpreter, its tensors, inspection, the
extractor, the ImageNet classifier). The runtimes import neither this module nor
`jobs.ml.backbones` or `jobs.ml.sanity`, which use this registry: the dependency goes one way.

The web process imports this module for the names, labels, signatures and flags, so it loads no
TensorFlow: the methods that run a model import their runtime (worker code) inside.

A new format is a `ModelFormat` subclass here (a name of at most 8 characters, label, title,
suffixes, kind, flags; `accepts`, `inspect` and `extractor`, and `suggest_scaling`, `labels` or
`classifier` when the file can say more), its runtime code in a module of its own when it is a new
kind, and one `register` line at the bottom. Registered here, it is known to every process that
opens models: the web, the workers and the sandbox's child.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from jobs.ml.scaling import RAW, InputScaling
from jobs.ml.signatures import HDF5, HEAD_BYTES, ZIP, describe

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from jobs.ml.backbone_record import Backbone

Runner = Callable[[InputScaling, np.ndarray], np.ndarray]  # features or scores(scaling, 0..255 pixels)


class ModelFormat:
    """One model file format. Subclasses set the class attributes and override what differs."""

    name: ClassVar[str]  # the stored value: Backbone.format, the API's "format" (at most 8 characters)
    label: ClassVar[str]  # the database choice's label, e.g. "Keras (.keras)"
    title: ClassVar[str]  # how sentences and pages name it, e.g. "TensorFlow Lite"
    suffixes: ClassVar[tuple[str, ...]]  # lower case, with the dot; the first is the one files are stored under
    kind: ClassVar[str]  # the runtime a Backbone record names ("keras" for both Keras files)
    fine_tunes: ClassVar[bool] = False  # its weights can be trained further (transfer learning's finetune mode)
    in_graph: ClassVar[bool] = False  # a Keras graph a head joins: a model on it is one model.keras, exportable
    mixed_precision: ClassVar[bool] = False  # computes in bfloat16/float16 when asked; others in their own types

    @property
    def exportable(self) -> bool:
        """Whether a classifier on it can be exported as one file: only when backbone and head are one graph."""
        return self.in_graph

    @property
    def suffix(self) -> str:
        return self.suffixes[0]

    def accepts(self, head: bytes) -> bool:
        """Whether `head` (a file's first HEAD_BYTES) carries this format's signature."""
        raise NotImplementedError

    def mismatch(self, filename: str, what: str) -> str:
        """The sentence for a file named as this format whose bytes are `what` ("a JPEG image") instead."""
        return f"{filename} could not be opened as a {self.title} model: it is {what}."

    def inspect(self, path: Path, output: str | None, input_size: int | None) -> tuple[str, int, int, tuple]:
        """(the layer or tensor features come from, input side, channels, feature shape), or a ValueError sentence."""
        raise NotImplementedError

    def suggest_scaling(self, path: Path) -> tuple[InputScaling, str]:
        """(the input scaling the file asks for, why) when its owner has not chosen one."""
        return RAW, "the default (the file does not say)"

    def labels(self, path: Path) -> list[str] | None:
        """The class names the file itself carries, for the sanity report, or None."""
        return None

    def extractor(self, backbone: Backbone, precision: str) -> Callable[[np.ndarray], np.ndarray]:
        """float32 0..255 pixels (N, size, size, C) -> float32 features (N, feature_dim)."""
        raise NotImplementedError

    def feature_runner(self, backbone: Backbone) -> Runner:
        """features(scaling, pixels) for the sanity check, which tries several scalings: an extractor per
        scaling, since a file may be fed differently under each (a quantized input), not just rescaled."""
        extractors: dict[InputScaling, Callable] = {}

        def run(scaling: InputScaling, pixels: np.ndarray) -> np.ndarray:
            if scaling not in extractors:
                extractors[scaling] = self.extractor(dataclasses.replace(backbone, scaling=scaling), "float32")
            return np.asarray(extractors[scaling](pixels), np.float64)

        return run

    def classifier(self, backbone: Backbone) -> Runner | None:
        """scores(scaling, pixels) of the ImageNet classifier the file ends in, or None (the sanity check's labels)."""
        return None


class KerasFormat(ModelFormat):
    """A Keras 3 `.keras` zip: loaded with safe_mode, cut at any layer, fine-tuned, joined to a head."""

    name, label, title = "keras", "Keras (.keras)", "Keras"
    suffixes, kind = (".keras",), "keras"
    fine_tunes = in_graph = mixed_precision = True

    def accepts(self, head: bytes) -> bool:
        return head.startswith(ZIP)

    def mismatch(self, filename: str, what: str) -> str:
        return (f"{filename} could not be opened as a Keras model: a .keras file is a zip archive, and this one is "
                f"{what}. Save the model with model.save(\"name.keras\") and upload that file.")

    def inspect(self, path: Path, output: str | None, input_size: int | None) -> tuple[str, int, int, tuple]:
        from jobs.ml import keras_runtime  # loads Keras: only on a worker

        _, layer, size, channels, shape = keras_runtime.resolve(keras_runtime.load_file(path), output, input_size)
        return layer, size, channels, shape

    def suggest_scaling(self, path: Path) -> tuple[InputScaling, str]:
        return RAW, "the default for Keras files (models that rescale inside)"

    def extractor(self, backbone: Backbone, precision: str) -> Callable[[np.ndarray], np.ndarray]:
        from jobs.ml import keras_runtime  # builds a tf.function: TensorFlow loads only on a worker

        return keras_runtime.Extractor(keras_runtime.file_feature_model(backbone, precision), backbone, precision)

    def feature_runner(self, backbone: Backbone) -> Runner:
        """Built once on raw pixels and fed scaled ones: rebuilding a Keras model per scaling is slow."""
        raw = self.extractor(dataclasses.replace(backbone, scaling=RAW), "float32")
        return lambda scaling, pixels: np.asarray(raw(scaling.apply(pixels)), np.float64)

    def classifier(self, backbone: Backbone) -> Runner | None:
        from jobs.ml import keras_runtime  # loads Keras: only on a worker

        return keras_runtime.imagenet_classifier(backbone)


class HDF5Format(KerasFormat):
    """The legacy Keras file: another container, the same model and runtime once loaded."""

    name, label, title, suffixes = "h5", "Keras HDF5 (.h5)", "Keras HDF5", (".h5",)

    def accepts(self, head: bytes) -> bool:
        # HDF5's signature sits at 0, or after a user block of 512, 1024 or 2048 bytes.
        return any(head[offset:offset + len(HDF5)] == HDF5 for offset in (0, 512, 1024, 2048))

    def mismatch(self, filename: str, what: str) -> str:
        return (f"{filename} could not be opened as a Keras model: an .h5 file is an HDF5 file, and this one is "
                f"{what}. Save the model with model.save(\"name.h5\") and upload that file.")


class TFLiteFormat(ModelFormat):
    """A TensorFlow Lite flatbuffer: run in its own interpreter, frozen, possibly quantized."""

    name, label, title = "tflite", "TensorFlow Lite (.tflite)", "TensorFlow Lite"
    suffixes, kind = (".tflite",), "tflite"

    def accepts(self, head: bytes) -> bool:
        return head[4:8] == b"TFL3"  # the flatbuffer's file identifier, after its root offset

    def mismatch(self, filename: str, what: str) -> str:
        return (f"{filename} could not be opened as a TensorFlow Lite model: it is {what}. Convert the model with "
                "tf.lite.TFLiteConverter and upload the .tflite file it writes.")

    def inspect(self, path: Path, output: str | None, input_size: int | None) -> tuple[str, int, int, tuple]:
        from jobs.ml import tflite_runtime  # runs the interpreter: only on a worker

        return tflite_runtime.inspect(path, output, input_size)

    def suggest_scaling(self, path: Path) -> tuple[InputScaling, str]:
        """A quantized input takes the pixels themselves; a float one with TFLite metadata takes the mean and
        std the metadata names; otherwise raw pixels, and the sanity report asks its owner to check."""
        from jobs.ml import tflite_runtime  # the interpreter: only on a worker
        from jobs.ml.tflite_metadata import read_metadata

        try:
            detail = tflite_runtime.open_interpreter(str(path), preserve_all=False).get_input_details()[0]
        except Exception:  # inspect says what is wrong with the file
            return RAW, "the default"
        dtype = np.dtype(detail["dtype"])
        if dtype.kind in "iu":
            return RAW, f"its {dtype.name} (quantized) input takes the pixels themselves"
        metadata = read_metadata(path)
        if metadata is not None and metadata.mean and metadata.std:
            try:
                return InputScaling.from_statistics(metadata.mean, metadata.std), "the model's TFLite metadata"
            except ValueError:
                pass  # statistics no image model uses: fall back to the default
        return super().suggest_scaling(path)

    def labels(self, path: Path) -> list[str] | None:
        from jobs.ml.tflite_metadata import read_metadata

        metadata = read_metadata(path)
        return list(metadata.labels) if metadata is not None and metadata.labels else None

    def extractor(self, backbone: Backbone, precision: str) -> Callable[[np.ndarray], np.ndarray]:
        from jobs.ml import tflite_runtime  # runs the interpreter: only on a worker

        if not Path(backbone.source).is_file():
            raise ValueError(f"The file of the backbone {backbone.title} is gone; upload it again.")
        return tflite_runtime.Extractor(backbone)

    def classifier(self, backbone: Backbone) -> Runner | None:
        from jobs.ml import tflite_runtime  # runs the interpreter: only on a worker

        return tflite_runtime.imagenet_classifier(backbone)


# --- the registry ----------------------------------------------------------------------------------

FORMATS: dict[str, ModelFormat] = {}  # name -> format, in registration order


def register(fmt: type[ModelFormat]) -> type[ModelFormat]:
    """Add a format (usable as a class decorator). Its name and suffixes must be new; the first format
    registered for a kind is the one `by_kind` answers (so Keras, not its HDF5 container)."""
    instance = fmt()
    taken = {suffix for other in FORMATS.values() for suffix in other.suffixes}
    if instance.name in FORMATS or taken & set(instance.suffixes):
        raise ValueError(f"A model format called {instance.name!r} or with suffix {instance.suffixes} is registered.")
    FORMATS[instance.name] = instance
    return fmt


def unregister(name: str) -> None:
    """Remove a format (tests register toy ones)."""
    FORMATS.pop(name, None)


def by_name(name: str) -> ModelFormat:
    """The format a stored name (Backbone.format) means; ValueError for none."""
    try:
        return FORMATS[name]
    except (KeyError, TypeError):
        raise ValueError(f"There is no model format called {name!r}.") from None


def by_filename(filename: str) -> ModelFormat | None:
    """The format a file's name claims (its suffix, any case), or None."""
    suffix = "." + str(filename).rsplit(".", 1)[-1].lower() if "." in str(filename) else ""
    return next((fmt for fmt in FORMATS.values() if suffix in fmt.suffixes), None)


def by_kind(kind: str) -> ModelFormat:
    """The format whose runtime a Backbone record's `kind` names; ValueError for none."""
    found = next((fmt for fmt in FORMATS.values() if fmt.kind == kind), None)
    if found is None:
        titles: dict[str, str] = {}
        for fmt in FORMATS.values():
            titles.setdefault(fmt.kind, fmt.title)  # a kind is named by its first format: Keras, not Keras HDF5
        raise ValueError(f"A backbone is a {' or '.join(titles.values())} model, not {kind!r}.")
    return found


def of_backbone(record: dict | None) -> ModelFormat:
    """The format of the backbone a model's metadata records; a model without one is a Keras model."""
    return by_kind((record or {}).get("kind") or KerasFormat.kind)


def identify(head: bytes) -> ModelFormat | None:
    """The format a file's first HEAD_BYTES say it is, whatever its name (a .keras zip comes first)."""
    return next((fmt for fmt in FORMATS.values() if fmt.accepts(head)), None)


def suffix_list() -> str:
    """".keras, .h5 or .tflite": every accepted suffix, for sentences."""
    suffixes = [suffix for fmt in FORMATS.values() for suffix in fmt.suffixes]
    return ", ".join(suffixes[:-1]) + " or " + suffixes[-1] if len(suffixes) > 1 else "".join(suffixes)


def not_a_model(filename: str) -> str:
    """The sentence for a file whose name has none of the suffixes."""
    return f"A backbone is a {suffix_list()} file; {filename} is none of these."


def problem(filename: str, head: bytes) -> str | None:
    """None when `head` can start a model file named `filename`, else one sentence naming the file, what it
    is instead, and what to upload. A name with no known suffix is left to `not_a_model`."""
    if not head:
        return f"{filename} is empty: upload the model file itself."
    fmt = by_filename(filename)
    if fmt is None or fmt.accepts(head):
        return None
    return fmt.mismatch(filename, describe(head))


def of_file(path: Path) -> ModelFormat:
    """The format of the model file at `path`, checked by its name and then its first bytes; ValueError otherwise."""
    path = Path(path)
    fmt = by_filename(path.name)
    if fmt is None:
        raise ValueError(not_a_model(path.name))
    if not path.is_file():
        raise ValueError(f"There is no file called {path.name}.")
    with open(path, "rb") as handle:  # the real reason for a wrong file, before a reader invents one
        found = problem(path.name, handle.read(HEAD_BYTES))
    if found:
        raise ValueError(found)
    return fmt


def choices() -> list[tuple[str, str]]:
    """(name, label) of every format: Backbone.format's choices."""
    return [(fmt.name, fmt.label) for fmt in FORMATS.values()]


def catalogue() -> list[dict]:
    """What pages need to know of each format, for their scripts: name, title, suffixes, capabilities."""
    return [{"name": fmt.name, "title": fmt.title, "suffixes": list(fmt.suffixes), "fine_tunes": fmt.fine_tunes,
             "exportable": fmt.exportable} for fmt in FORMATS.values()]


register(KerasFormat)
register(HDF5Format)
register(TFLiteFormat)
