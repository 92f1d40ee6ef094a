"""The training job: dataset rows -> file lists -> a trained classifier -> a TrainedModel.

The work is `jobs.ml.training` (zoo models from scratch) or `jobs.ml.transfer` (a head on a
backbone, or logistic regression on its cached features); this glue turns the dataset's
items into (path, class index) lists per split, keeps the job's working folder (checkpoints)
under DATA_DIR/jobs/<id>/ so a failed run can resume, and records the model and the evaluation
(with the predicted class of every evaluated image in a file beside the model).
"""

from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path

from django.conf import settings
from django.db import transaction

from jobs.ml.config import TrainConfig, TransferConfig, from_params
from jobs.ml.predictions import write_predictions
from jobs.provenance import library_versions
from jobs.runner import UserFacingError
from webapp.datasets.models import DatasetItem
from webapp.experiments.models import TrainedModel

FEATURES_SHARE = 0.3  # of the progress bar, when features must be extracted before training


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
    from jobs.ml.zoo import ARCHITECTURES

    dataset, params = job.dataset, job.params
    if dataset is None:
        raise UserFacingError("The dataset of this job was deleted, so it cannot be trained on.")
    class_names = [c["name"] for c in dataset.classes]
    splits = _splits(dataset, class_names)
    if not splits["train"]:
        raise UserFacingError("The dataset's training split is empty.")
    workdir = job_workdir(job)
    workdir.mkdir(parents=True, exist_ok=True)
    extra = {}
    try:
        if ARCHITECTURES[params["architecture"]].uses_backbone:
            result, extra = _train_on_backbone(job, dataset, splits, class_names, workdir, reporter)
        else:
            result = _train_from_scratch(job, splits, class_names, workdir, reporter)
    except ValueError as exc:  # the core's refusals are sentences for the user
        raise UserFacingError(str(exc)) from exc
    model = keep_model(job, workdir, dataset, name=f"{params['architecture']} on {dataset.name}",
                       architecture=params["architecture"], class_names=result.classes,
                       image_size=params["image_size"], channels=1 if params["color_mode"] == "grayscale" else 3,
                       test_accuracy=result.test_accuracy, backbone=extra.get("backbone", {}),
                       trained_on=f"{sum(map(len, splits.values())):,} photos of {len(class_names)} classes "
                                  f"({dataset.name})")
    by_path = dict((str(dataset.images_dir / p), i) for p, i in dataset.items.values_list("path", "id"))
    # What the model said about every evaluated image, beside the model (for comparing runs image by
    # image); the result keeps only where it is and how many.
    predictions = write_predictions(model.directory, result.predictions, dataset.images_dir, result.classes,
                                    result.evaluated_on)
    return {
        "test_accuracy": result.test_accuracy, "test_loss": result.test_loss,
        "confusion_matrix": result.confusion_matrix, "classes": result.classes, "per_class": result.per_class,
        "mistakes": [{**m, "path": Path(m["path"]).relative_to(dataset.images_dir).as_posix(),
                      "item": by_path.get(m["path"])} for m in result.mistakes],
        "evaluated_on": result.evaluated_on,
        "best_epoch": result.best_epoch, "model_epoch": result.model_epoch, "summary": result.summary,
        "images_per_second": result.images_per_second,
        "train_seconds": result.seconds, "split_sizes": {k: len(v) for k, v in splits.items()},
        "model_id": model.id, "predictions": predictions, "environment": environment(), **extra,
    }


def _train_from_scratch(job, splits, class_names, workdir: Path, reporter):
    from jobs.ml.training import train_classifier

    params = job.params
    config = from_params(TrainConfig, params)
    return train_classifier(splits["train"], splits["val"], splits["test"], class_names, config, workdir,
                            reporter, resume=bool(params.get("resume")))


def _train_on_backbone(job, dataset, splits, class_names, workdir: Path, reporter):
    """Transfer (extract or finetune) and logistic regression: features first when the model reads them."""
    from jobs.features import backbone_for, dataset_features, features_summary
    from jobs.ml.progress import ScaledSink
    from jobs.ml.transfer import train_logreg, train_transfer

    params = job.params
    backbone = backbone_for(job.owner, params["backbone"], params.get("weights", "imagenet"))
    features = None
    # The job's record names the backbone, not where its file sits (keep_model finds that in the metadata).
    extra = {"backbone": {k: v for k, v in backbone.to_dict().items() if k != "source"}}
    sink = reporter
    if params.get("mode", "extract") == "extract":  # logreg has no mode: it always reads features
        features, reused = dataset_features(dataset, backbone, reporter, end=FEATURES_SHARE,
                                            batch_size=params["batch_size"])
        extra["features"] = features_summary(backbone, features, reused)
        sink = ScaledSink(reporter, FEATURES_SHARE if not reused else 0.02, 1.0)
    train, val, test = splits["train"], splits["val"], splits["test"]
    # Cached rows are keyed by the item's path inside the dataset; the splits hold file paths.
    prefix = f"{dataset.images_dir}/"

    def feature_key(path: str) -> str:
        return path.removeprefix(prefix)

    if params["architecture"] == "logreg":
        return train_logreg(train, val, test, class_names, backbone, features, workdir, sink,
                            seed=params["seed"], feature_key=feature_key), extra
    config = from_params(TransferConfig, params)
    return train_transfer(train, val, test, class_names, backbone, features, config, workdir, sink,
                          feature_key=feature_key), extra


def keep_model(job, workdir: Path, dataset, **fields) -> TrainedModel:
    """Record the model a job left in `workdir` and copy its files to DATA_DIR/models/<id>/.

    A model that reads an uploaded or trained backbone at prediction time (caption models,
    heads on a TFLite file) gets its own copy of that file, so deleting the upload later does
    not break it; its metadata points at the copy by its name inside the model's folder (the
    readers resolve it there), so no server path is recorded where a user could read it.
    """
    with transaction.atomic():
        model, _ = TrainedModel.objects.update_or_create(job=job, defaults=dict(owner=job.owner, dataset=dataset,
                                                                                **fields))
        model.directory.mkdir(parents=True, exist_ok=True)
        shutil.copy2(workdir / "model.keras", model.file_path)
        metadata = json.loads((workdir / "metadata.json").read_text(encoding="utf-8"))
        source = metadata.get("backbone", {}).get("source")
        if source:
            copy = model.directory / f"backbone{Path(source).suffix}"
            shutil.copy2(source, copy)
            metadata["backbone"]["source"] = copy.name
            model.backbone = metadata["backbone"]
        (model.directory / "metadata.json").write_text(json.dumps(metadata, indent=1), encoding="utf-8")
        model.size_bytes = model.file_path.stat().st_size
        model.save(update_fields=["size_bytes", "backbone"])
    return model


def environment() -> dict:
    """The job page's Environment facts: the versions the record keeps (jobs.provenance), and the host."""
    return {**library_versions(), "host": platform.node()}
