"""The training job: dataset rows -> file lists -> `train_classifier` -> a TrainedModel.

The work is `jobs.ml.training` (no Django); this glue turns the dataset's items into
(path, class index) lists per split, keeps the job's working folder (checkpoints) under
DATA_DIR/jobs/<id>/ so a failed run can resume, and records the model and the evaluation.
"""

from __future__ import annotations

import platform
import shutil
from pathlib import Path

from django.conf import settings
from django.db import transaction

from jobs.runner import UserFacingError
from webapp.datasets.models import DatasetItem
from webapp.experiments.models import TrainedModel


def job_workdir(job) -> Path:
    return Path(settings.DATA_DIR) / "jobs" / str(job.pk)


def _splits(dataset, class_names: list[str]) -> dict[str, list[tuple[str, int]]]:
    index = {name: i for i, name in enumerate(class_names)}
    splits: dict[str, list[tuple[str, int]]] = {s: [] for s in DatasetItem.Split.values}
    images = dataset.images_dir
    for path, label, split in dataset.items.values_list("path", "label", "split").iterator(chunk_size=5000):
        if label in index and split in splits:
            splits[split].append((str(images / path), index[label]))
    return splits


def train(job, reporter) -> dict:
    from jobs.ml.training import TrainConfig, train_classifier

    dataset, params = job.dataset, job.params
    if dataset is None:
        raise UserFacingError("The dataset of this job was deleted, so it cannot be trained on.")
    class_names = [c["name"] for c in dataset.classes]
    splits = _splits(dataset, class_names)
    if not splits["train"]:
        raise UserFacingError("The dataset's training split is empty.")
    config = TrainConfig(
        architecture=params["architecture"], image_size=params["image_size"],
        channels=1 if params["color_mode"] == "grayscale" else 3, epochs=params["epochs"],
        batch_size=params["batch_size"], optimizer=params["optimizer"], learning_rate=params["learning_rate"],
        augment_flip=params["augment_flip"], augment_rotation=params["augment_rotation"],
        augment_zoom=params["augment_zoom"], early_stopping_patience=params.get("early_stopping"),
        seed=params["seed"],
    )
    workdir = job_workdir(job)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        result = train_classifier(splits["train"], splits["val"], splits["test"], class_names, config, workdir,
                                  reporter, resume=bool(params.get("resume")))
    except ValueError as exc:  # the core's refusals are sentences for the user
        raise UserFacingError(str(exc)) from exc
    model = _keep_model(job, dataset, result, config)
    by_path = dict((str(dataset.images_dir / p), i) for p, i in dataset.items.values_list("path", "id"))
    return {
        "test_accuracy": result.test_accuracy, "test_loss": result.test_loss,
        "confusion_matrix": result.confusion_matrix, "classes": result.classes, "per_class": result.per_class,
        "mistakes": [{**m, "path": Path(m["path"]).relative_to(dataset.images_dir).as_posix(),
                      "item": by_path.get(m["path"])} for m in result.mistakes],
        "evaluated_on": getattr(result, "evaluated_on", "test"),
        "best_epoch": result.best_epoch, "summary": result.summary, "images_per_second": result.images_per_second,
        "train_seconds": result.seconds, "split_sizes": {k: len(v) for k, v in splits.items()},
        "model_id": model.id, "environment": _environment(),
    }


def _keep_model(job, dataset, result, config) -> TrainedModel:
    workdir = Path(result.model_path).parent
    with transaction.atomic():
        model, _ = TrainedModel.objects.update_or_create(job=job, defaults=dict(
            owner=job.owner, dataset=dataset, name=f"{job.params['architecture']} on {dataset.name}",
            architecture=config.architecture, class_names=result.classes, image_size=config.image_size,
            channels=config.channels, test_accuracy=result.test_accuracy,
        ))
        model.directory.mkdir(parents=True, exist_ok=True)
        for name in ("model.keras", "metadata.json"):
            shutil.copy2(workdir / name, model.directory / name)
        model.size_bytes = model.file_path.stat().st_size
        model.save(update_fields=["size_bytes"])
    return model


def _environment() -> dict:
    import keras
    import numpy
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": numpy.__version__, "host": platform.node()}
