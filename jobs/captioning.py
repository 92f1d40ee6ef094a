"""The caption-training job: dataset rows -> cached features -> `train_captioner` -> a caption model.

Features come first, as a visible step of the job (found in the cache, or extracted now and
kept for every later job on the same images and backbone); training then reads them
progressively. The model's metadata records the backbone, so the inference worker can turn
a photo into the same features before captioning it. Training checkpoints every epoch in the
job's working folder, so a failed or cancelled job that is resumed (`params.resume`) continues
from its last finished epoch, on the cached features and with the same vocabulary.
"""

from __future__ import annotations

from pathlib import Path

from jobs.features import backbone_for, dataset_features, features_summary
from jobs.ml.config import CaptionConfig, from_params
from jobs.runner import UserFacingError
from jobs.training import FEATURES_SHARE, environment, job_workdir, keep_model
from webapp.experiments.models import TrainedModel


def train_captioner(job, reporter) -> dict:
    from jobs.ml.captioning import train_captioner as train
    from jobs.ml.progress import ScaledSink

    dataset, params = job.dataset, job.params
    if dataset is None:
        raise UserFacingError("The dataset of this job was deleted, so it cannot be trained on.")
    backbone = backbone_for(job.owner, params["backbone"], params.get("weights", "imagenet"))
    features, reused = dataset_features(dataset, backbone, reporter, end=FEATURES_SHARE)
    captions, splits = {}, {"train": [], "val": [], "test": []}
    for path, item_captions, split in dataset.items.values_list("path", "captions", "split").iterator(chunk_size=5000):
        if item_captions and split in splits:
            captions[path] = item_captions
            splits[split].append(path)
    if not splits["train"]:
        raise UserFacingError("The dataset's training split has no captioned images.")
    config = from_params(CaptionConfig, params)
    workdir = job_workdir(job)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        result = train(features, captions, splits, config, workdir,
                       ScaledSink(reporter, FEATURES_SHARE if not reused else 0.02, 1.0),
                       metadata={"backbone": backbone.to_dict()}, resume=bool(params.get("resume")))
    except ValueError as exc:
        raise UserFacingError(str(exc)) from exc

    count = sum(len(keys) for keys in splits.values())
    model = keep_model(job, Path(result.model_path).parent, dataset, task=TrainedModel.Task.CAPTION,
                       name=f"Captions of {dataset.name}", architecture="merge", class_names=[],
                       image_size=backbone.image_size, channels=backbone.channels, test_accuracy=None,
                       backbone=backbone.to_dict(),
                       trained_on=f"{count:,} photos with {dataset.num_captions:,} written captions "
                                  f"({dataset.name})")
    item_ids = dict(dataset.items.values_list("path", "id"))
    greedy = result.bleu["greedy"]
    return {
        **{name: greedy[name] for name in ("bleu1", "bleu2", "bleu3", "bleu4")},  # the contract's top level
        "bleu": result.bleu, "baseline_caption": result.baseline_caption, "beam_width": result.beam_width,
        "gallery": [{**entry, "item": item_ids.get(entry["key"])} for entry in result.gallery],
        "vocab_size": result.vocab_size, "max_length": result.max_length, "tokenisation": result.tokenisation,
        "evaluated_on": result.evaluated_on, "best_epoch": result.best_epoch,
        "model_epoch": result.model_epoch, "summary": result.summary,
        "params": result.params, "split_sizes": result.split_sizes, "samples_per_epoch": result.samples_per_epoch,
        "stopped_early": result.stopped_early, "train_seconds": result.seconds,
        "samples_per_second": result.samples_per_second, "epochs_run": result.epochs_run,
        "resumed_from": result.resumed_from,
        "features": features_summary(backbone, features, reused), "model_id": model.id,
        "environment": environment(),
    }
