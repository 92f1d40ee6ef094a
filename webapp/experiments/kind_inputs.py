"""What several job kinds check about their inputs: the owner's ready dataset, the backbone, the model's size.

Kept apart from the kinds that use them (webapp.jobs.kinds) so each kind module holds only its own rules.
"""

from __future__ import annotations

from rest_framework import serializers

from jobs.queues import Queue
from webapp.datasets.models import Dataset
from webapp.experiments.backbone_choices import WEIGHTS, BackboneChoice, resolve
from webapp.jobs.inference import ask
from webapp.jobs.workers import read_presence
from webapp.redis_client import REDIS_ERRORS

MEMORY_CHECK_TIMEOUT = 5.0  # seconds a launch waits for the model's size; past it, launch without the check


def ready_dataset(dataset_id: int, user, kind: str | None):
    """The user's ready dataset `dataset_id` (of `kind`, when given), or a ValidationError."""
    dataset = Dataset.objects.filter(id=dataset_id, owner=user).first()
    if dataset is None:
        raise serializers.ValidationError("You have no dataset with this id.")
    if dataset.status != Dataset.Status.READY:
        raise serializers.ValidationError(f"This dataset is not ready yet (it is {dataset.status}).")
    if kind == Dataset.Kind.CLASSIFICATION and dataset.kind != kind:
        raise serializers.ValidationError("Training a classifier needs a classification dataset; "
                                          "this one holds captions.")
    if kind == Dataset.Kind.CAPTIONS and dataset.kind != kind:
        raise serializers.ValidationError("Training a caption model needs a caption dataset; "
                                          "this one holds classes.")
    return dataset


def describe(name: str, shape: list[int], classes: int) -> dict:
    """The model summary, from the inference worker (which builds models; it caches each shape).

    When no live worker serves the inference queue nobody would answer, so it says so at once
    instead of holding the launch for MEMORY_CHECK_TIMEOUT (the launch then goes ahead unchecked).
    """
    try:
        serving = any(Queue.INFERENCE in w.get("queues", []) for w in read_presence().values())
    except REDIS_ERRORS:
        serving = True  # ask() says what is wrong with Redis
    if not serving:
        raise LookupError("No inference worker is running to describe the model.")
    return ask("inference.describe_architecture", name, shape, classes, timeout=MEMORY_CHECK_TIMEOUT)


def record_dataset(attrs: dict) -> None:
    """Keep the dataset's id, name and content hash in the params: the job's record outlives the dataset."""
    dataset = attrs["dataset"]
    attrs["dataset_obj"], attrs["dataset"] = dataset, dataset.id
    attrs["dataset_name"], attrs["dataset_hash"] = dataset.name, dataset.content_hash


def check_backbone(attrs: dict, user, default: str) -> BackboneChoice:
    """Resolve params.backbone (defaulting it) and drop `weights` where the backbone has none to choose."""
    try:
        choice = resolve(attrs.get("backbone") or default, user)
    except serializers.ValidationError as exc:
        raise serializers.ValidationError({"backbone": exc.detail}) from None
    attrs["backbone"] = choice.key
    attrs["backbone_label"] = choice.label
    if not choice.has_weights_choice:
        attrs["weights"] = "file"
    return choice


class BackboneParams(serializers.Serializer):
    backbone = serializers.CharField(
        required=False, help_text="vgg16, vgg16_conv, mobilenet_v2, backbones/<id> (uploaded) or models/<id> "
                                  "(a classifier you trained).")
    weights = serializers.ChoiceField(choices=list(WEIGHTS), default="imagenet",
                                      help_text="For built-in backbones: ImageNet weights, or random ones.")


class DatasetBackboneParams(BackboneParams):
    """The params of a kind that runs a backbone over one dataset (feature extraction, caption training):
    the backbone defaults to VGG16, whose features the captioning seeds were made with, and the dataset
    is recorded in the params."""

    default_backbone = "vgg16"

    def validate(self, attrs):
        check_backbone(attrs, self.context["request"].user, self.default_backbone)
        record_dataset(attrs)
        return attrs
