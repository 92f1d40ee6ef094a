"""Tasks of the `inference` queue: answers a person waits for (predictions, model summaries).

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


@functools.lru_cache(maxsize=MODELS_KEPT)
def _classifier(model_dir: str, mtime: float):
    from jobs.ml.predict import load_classifier

    return load_classifier(Path(model_dir))


@app.task(name="inference.predict", ignore_result=False, soft_time_limit=60, time_limit=90)
def predict(model_id: int, image_b64: str, top: int = 5) -> dict:
    from jobs.ml.predict import BadImage, predict_image

    model_dir = Path(settings.DATA_DIR) / "models" / str(model_id)
    model_file = model_dir / "model.keras"
    if not model_file.exists():
        return {"error": "The model's file is missing on the server."}
    model, metadata = _classifier(str(model_dir), model_file.stat().st_mtime)
    try:
        predictions = predict_image(model, metadata, base64.b64decode(image_b64), top=top,
                                    max_pixels=settings.INGEST_MAX_PIXELS)
    except BadImage as exc:
        return {"error": str(exc)}
    return {"predictions": predictions}


@app.task(name="inference.describe_architecture", ignore_result=False, soft_time_limit=120, time_limit=150)
def describe_architecture(name: str, input_shape: list[int] | None = None, classes: int | None = None) -> dict:
    from jobs.ml.zoo import describe

    try:
        return describe(name, tuple(input_shape) if input_shape else None, classes)
    except ValueError as exc:
        return {"error": str(exc)}
