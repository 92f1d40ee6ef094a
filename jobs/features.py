"""Backbones and cached features for jobs: the glue between Job rows and `jobs.ml.features`.

A job names its backbone as `params.backbone` (a built-in, `backbones/<id>` or `models/<id>`);
here that name becomes a `jobs.ml.backbones.Backbone`, looked up among the job owner's own
files only. Features live in DATA_DIR/features, keyed by the dataset's content hash and the
backbone, so a second job on the same data finds them instead of computing them again. Rows
are keyed by the item's path inside the dataset, which the content hash pins down.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from jobs.runner import UserFacingError
from webapp.datasets.content import content_key


def feature_store():
    from jobs.ml.features import FeatureStore

    return FeatureStore(Path(settings.DATA_DIR) / "features")


def backbone_for(owner, key: str, weights: str = "imagenet"):
    """The Backbone `key` names for `owner`, or UserFacingError (deleted, never theirs, unreadable)."""
    from jobs.ml import backbones
    from jobs.ml.scaling import InputScaling
    from webapp.experiments.models import Backbone, TrainedModel

    kind, _, ident = key.partition("/")
    try:
        if key in backbones.BUILTIN_BACKBONES:
            return backbones.builtin(key, weights)
        if kind == "backbones" and ident.isdigit():
            row = Backbone.objects.filter(id=int(ident), owner=owner).first()
            if row is None or not row.file_path.exists():
                raise UserFacingError(f"The uploaded backbone {key} no longer exists.")
            # The upload was inspected (layer, input, output shape, hash) once; its row says all of it.
            return backbones.Backbone(
                name=key, layer=row.output, weights=f"sha256:{row.sha256}", image_size=row.input_size,
                channels=row.channels, feature_shape=tuple(row.feature_shape),
                kind=row.kind, source=str(row.file_path),
                scaling=InputScaling.from_dict(row.input_scaling))
        if kind == "models" and ident.isdigit():
            model = TrainedModel.objects.filter(id=int(ident), owner=owner, task=TrainedModel.Task.CLASSIFY).first()
            if model is None or not model.file_path.exists():
                raise UserFacingError(f"The trained model {key} no longer exists.")
            return backbones.from_trained_model(model.directory, key)
    except ValueError as exc:  # the core's refusals (and WeightsMissing) are sentences for the user
        raise UserFacingError(str(exc)) from exc
    raise UserFacingError(f"There is no backbone called {key!r}.")


def dataset_items(dataset) -> list[tuple[str, str]]:
    """(key, image file) for every item of the dataset, in a stable order."""
    images = dataset.images_dir
    return [(path, str(images / path))
            for path in dataset.items.order_by("id").values_list("path", flat=True).iterator(chunk_size=5000)]


def dataset_features(dataset, backbone, reporter, *, start: float = 0.0, end: float = 1.0, batch_size: int = 32,
                     precision: str = "auto"):
    """(FeatureSet, reused) for every item of `dataset`, extracted now only when not cached yet."""
    items = dataset_items(dataset)
    if not items:
        raise UserFacingError("The dataset has no images.")
    isolate = sandboxed_extraction if backbone.name.startswith("backbones/") else None
    try:
        return feature_store().ensure(content_key(dataset), items, backbone, reporter, batch_size=batch_size,
                                      precision=precision, start=start, end=end, isolate=isolate)
    except ValueError as exc:
        raise UserFacingError(str(exc)) from exc


def sandboxed_extraction(paths, backbone, target, sink, *, batch_size: int, precision: str, start: float,
                         end: float, limits: dict | None = None) -> dict:
    """`jobs.ml.features.extract_to_file` in `jobs.sandbox`'s child, for a backbone a user uploaded.

    The file passed its check on a few photos at upload; a dataset holds thousands it never saw.
    If it hangs on one (no progress for SANDBOX_SECONDS), outgrows SANDBOX_MEMORY or crashes, the
    child dies and the job fails with a sentence, while the worker process goes on to its next job.
    """
    from jobs.sandbox import SandboxFailed, call

    limits = limits or {"seconds": settings.SANDBOX_SECONDS, "memory_bytes": settings.SANDBOX_MEMORY_BYTES}
    kwargs = {"paths": list(paths), "backbone": backbone.to_dict(), "target": str(target),
              "batch_size": batch_size, "precision": precision, "start": start, "end": end}
    try:
        answer = call("extract", kwargs, seconds=float(limits["seconds"]), memory_bytes=int(limits["memory_bytes"]),
                      on_progress=sink.progress, scratch=Path(settings.FILE_UPLOAD_TEMP_DIR))
    except SandboxFailed as exc:
        raise ValueError(f"Extracting features with {backbone.name} failed. {exc}") from None
    if "error" in answer:
        raise ValueError(answer["error"])
    return answer


def extract_features(job, reporter) -> dict:
    """The `extract_features` job: features for the whole dataset, stored once for every later job."""
    dataset, params = job.dataset, job.params
    if dataset is None:
        raise UserFacingError("The dataset of this job was deleted.")
    backbone = backbone_for(job.owner, params["backbone"], params.get("weights", "imagenet"))
    features, reused = dataset_features(dataset, backbone, reporter, batch_size=params.get("batch_size", 32),
                                        precision=params.get("precision", "auto"))
    return features_summary(backbone, features, reused)


def features_summary(backbone, features, reused: bool) -> dict:
    """What a job page and the experiment record say about the features a job used."""
    meta = features.meta
    return {
        "backbone": backbone.name, "backbone_title": backbone.title, "layer": backbone.layer,
        "weights": backbone.weights, "feature_shape": list(backbone.feature_shape),
        "feature_dim": backbone.feature_dim, "image_size": backbone.image_size, "count": len(features.keys),
        "reused": reused, "images_per_second": meta.get("images_per_second"), "seconds": meta.get("seconds"),
        "precision": meta.get("precision"), "cache": features.directory.name,
        "bytes": sum(f.stat().st_size for f in Path(features.directory).iterdir() if f.is_file()),
    }
