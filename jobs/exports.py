"""The export job: a trained classifier -> one file in another format, checked in its own runtime.

The conversion and the check run in `jobs.sandbox`'s child: a converter that crashes (TFLite's
int8 quantizer can segfault), hangs or eats the machine's memory fails this job with a sentence,
and the worker goes on to its next job. The file lands in the model's folder,
DATA_DIR/models/<id>/exports/, one per format (a new export of a format replaces the old one).
The int8 file is calibrated on the model's own training images; every export is checked on the
model's test images (its validation images when the test split is empty).
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from jobs.runner import UserFacingError
from webapp.datasets.models import DatasetItem
from webapp.experiments.models import TrainedModel


def _images(model: TrainedModel) -> tuple[list[str], list[tuple[str, int]]]:
    """(training image paths for calibration, (path, class index) of the evaluated images)."""
    dataset = model.dataset
    if dataset is None:
        raise UserFacingError("The dataset this model was trained on was deleted, so its export cannot be "
                              "calibrated and checked against the original on the same images.")
    index = {name: i for i, name in enumerate(model.class_names)}
    rows = list(dataset.items.filter(label__in=index).values_list("path", "label", "split"))
    images = dataset.images_dir

    def split(name: str) -> list[tuple[str, int]]:
        return [(str(images / path), index[label]) for path, label, where in rows if where == name]

    evaluated = split(DatasetItem.Split.TEST) or split(DatasetItem.Split.VAL)
    if not evaluated:
        raise UserFacingError("The model's dataset has no test or validation images to check the export on.")
    return [path for path, _ in split(DatasetItem.Split.TRAIN)], evaluated


def export_model(job, reporter) -> dict:
    """The `export_model` job: convert, check, and say how the file compares with the original."""
    from jobs.ml.export_formats import FORMATS, within_tolerance
    from jobs.sandbox import SandboxFailed, call

    model = TrainedModel.objects.filter(id=job.params["model"], owner=job.owner).first()
    if model is None:
        raise UserFacingError("This model was deleted, so there is nothing to export.")
    if not (model.file_path.is_file() and (model.directory / "metadata.json").is_file()):
        raise UserFacingError("This model's files are missing on the server, so it cannot be exported.")
    fmt = job.params["format"]
    calibration, evaluated = _images(model)
    reporter.progress(0.01, f"Exporting {model.name} as {FORMATS[fmt][0]}")
    try:
        figures = call("export", {"model_dir": str(model.directory), "fmt": fmt,
                                  "out_dir": str(model.exports_directory), "calibration": calibration,
                                  "test_items": evaluated},
                       seconds=max(settings.SANDBOX_SECONDS, 300.0), memory_bytes=settings.SANDBOX_MEMORY_BYTES,
                       on_progress=reporter.progress, scratch=Path(settings.FILE_UPLOAD_TEMP_DIR))
    except SandboxFailed as exc:
        raise UserFacingError(f"The {FORMATS[fmt][0]} export failed. {exc}") from None
    if "error" in figures:
        raise UserFacingError(figures["error"])
    problem = within_tolerance(fmt, figures)
    return {**figures, "model": model.id, "format": fmt, "title": FORMATS[fmt][0], "ok": problem is None,
            "problem": problem or ""}
