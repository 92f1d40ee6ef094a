"""Tasks of the `inference` queue: answers a person waits for (predictions, captions, summaries).

They run in their own worker process, which keeps recently used models loaded, so a
prediction takes milliseconds even while every training worker is busy. Unlike job tasks
they return their result (through the Celery result backend) and are not recorded as jobs.
"""

from __future__ import annotations

import base64
import functools
from pathlib import Path

from django.conf import settings

from jobs.celery import app

MODELS_KEPT = 4
UNLOADABLE = "This model cannot be loaded on the server: its files are damaged or missing."


class _Unavailable(Exception):
    """The model cannot be served; str() is the sentence the person sees."""


def _loaded(model_id: int, load):
    """`load(model_dir, mtime)` for a stored model (cached by the loader per folder and file time).

    A rewritten model.keras has a new mtime, so it is loaded afresh rather than served stale.
    """
    model_dir = Path(settings.DATA_DIR) / "models" / str(model_id)
    model_file = model_dir / "model.keras"
    if not model_file.exists():
        raise _Unavailable("The model's file is missing on the server.")
    try:
        return load(str(model_dir), model_file.stat().st_mtime)
    except (OSError, ValueError, KeyError):  # a damaged model folder, a backbone file gone
        raise _Unavailable(UNLOADABLE) from None


@functools.lru_cache(maxsize=MODELS_KEPT)
def _classifier(model_dir: str, mtime: float):
    from jobs.ml.predict import load_classifier

    return load_classifier(Path(model_dir))


@app.task(name="inference.predict", ignore_result=False, soft_time_limit=60, time_limit=90)
def predict(model_id: int, image_b64: str, top: int = 5) -> dict:
    from jobs.ml.predict import BadImage, predict_image

    try:
        model, metadata = _loaded(model_id, _classifier)
    except _Unavailable as exc:
        return {"error": str(exc)}
    try:
        predictions = predict_image(model, metadata, base64.b64decode(image_b64), top=top,
                                    max_pixels=settings.INFERENCE_MAX_PIXELS)
    except BadImage as exc:
        return {"error": str(exc)}
    return {"predictions": predictions}


@app.task(name="inference.describe_architecture", ignore_result=False, soft_time_limit=120, time_limit=150)
def describe_architecture(name: str, input_shape: list[int] | None = None, classes: int | None = None) -> dict:
    from jobs.ml.describe import describe

    try:
        return describe(name, tuple(input_shape) if input_shape else None, classes)
    except ValueError as exc:
        return {"error": str(exc)}


@app.task(name="inference.probe_training", ignore_result=False, soft_time_limit=60, time_limit=90)
def probe_training(name: str, input_shape: list[int], classes: int, batch_size: int) -> dict:
    """Seconds per image of training `name` here, for a sweep's time estimate (webapp.sweeps.estimate)."""
    from jobs.ml.training import probe_seconds_per_image

    try:
        return {"seconds_per_image": probe_seconds_per_image(name, tuple(input_shape), classes, batch_size)}
    except ValueError as exc:
        return {"error": str(exc)}


@functools.lru_cache(maxsize=MODELS_KEPT)
def _captioner(model_dir: str, mtime: float):
    """A caption model with the feature extractor it reads, loaded once and kept."""
    from jobs.ml.artifacts import backbone_record
    from jobs.ml.backbones import Backbone, load_extractor
    from jobs.ml.captioning import load_captioner

    captioner = load_captioner(Path(model_dir))
    backbone = Backbone.from_dict(backbone_record(model_dir, captioner.metadata))
    return captioner, backbone, load_extractor(backbone)


@app.task(name="inference.caption", ignore_result=False, soft_time_limit=60, time_limit=90)
def caption(model_id: int, image_b64: str, beam_width: int = 1) -> dict:
    """One photo -> one caption: the backbone's features, then greedy (or beam) decoding."""
    from jobs.ml.predict import BadImage, read_image

    try:
        captioner, backbone, extractor = _loaded(model_id, _captioner)
    except _Unavailable as exc:
        return {"error": str(exc)}
    try:
        pixels = read_image(base64.b64decode(image_b64), backbone.image_size, backbone.channels,
                            settings.INFERENCE_MAX_PIXELS)
    except BadImage as exc:
        return {"error": str(exc)}
    features = extractor(pixels[None])[0]
    return {"caption": captioner.caption(features, beam_width=beam_width)}


@app.task(name="inference.inspect_backbone", ignore_result=False, soft_time_limit=300, time_limit=330)
def inspect_backbone(path: str, output: str | None, input_size: int | None, name: str, scaling: dict | None = None,
                     labels_path: str | None = None, photos: list | None = None, limits: dict | None = None) -> dict:
    """What an uploaded feature extractor is (input size, output width, input scaling and why), with its
    sanity report on the sample photos (and `photos`: [name, path] pairs from the owner's dataset),
    or why it cannot be used. `scaling` None lets the file decide. Runs in `jobs.sandbox` within `limits`
    ({"seconds", "memory_bytes"}, chosen by the web process)."""
    return _sandboxed("inspect", limits, path=path, output=output, input_size=input_size, name=name,
                      scaling=scaling, labels_path=labels_path, photos=photos)


@app.task(name="inference.check_backbone", ignore_result=False, soft_time_limit=300, time_limit=330)
def check_backbone(backbone: dict, labels_path: str | None = None, photos: list | None = None,
                   limits: dict | None = None) -> dict:
    """The sanity report of a stored backbone (after its owner changed its scaling), or why it failed."""
    return _sandboxed("check", limits, backbone=backbone, labels_path=labels_path, photos=photos)


def _sandboxed(function: str, limits: dict | None, **kwargs) -> dict:
    from jobs.sandbox import SandboxFailed, call

    limits = limits or {}
    try:
        return call(function, kwargs, seconds=float(limits.get("seconds", settings.SANDBOX_SECONDS)),
                    memory_bytes=int(limits.get("memory_bytes", settings.SANDBOX_MEMORY_BYTES)),
                    scratch=Path(settings.FILE_UPLOAD_TEMP_DIR))
    except SandboxFailed as exc:
        return {"error": str(exc)}
