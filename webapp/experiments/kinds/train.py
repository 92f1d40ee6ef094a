"""Training a classifier: a zoo architecture from scratch, or a head on a backbone's features (transfer)."""

from __future__ import annotations

from rest_framework import serializers

from jobs.ml.catalog import ARCHITECTURES
from jobs.ml.config import MODE_DEFAULTS
from webapp.datasets.checks import small_classes, too_few_sentence
from webapp.experiments import input_defaults, params
from webapp.experiments import kind_inputs as inputs
from webapp.experiments.verdicts import classifier_verdict
from webapp.jobs import limits
from webapp.jobs.registry import Objective, TrainingKind, register


class TrainParams(params.TRAIN.serializer_base("TrainFields"), inputs.BackboneParams):
    """A training run. Only `dataset` and `architecture` are needed; the rest has defaults, so a
    newcomer picks two things and presses Start: image size and colour mode from the dataset within
    the architecture's limits (webapp.experiments.input_defaults), the others declared in `params.TRAIN`."""

    dataset = serializers.IntegerField(help_text="A ready classification dataset of yours.")
    architecture = serializers.ChoiceField(choices=sorted(ARCHITECTURES))
    validation_split = serializers.FloatField(
        required=False, allow_null=True, min_value=0.0, max_value=0.5,
        help_text="Ignored: the dataset's own train/validation/test split is used, so runs compare.")

    def validate_dataset(self, dataset_id: int):
        dataset = inputs.ready_dataset(dataset_id, self.context["request"].user, "classification")
        if len(dataset.classes) < 2:
            raise serializers.ValidationError("This dataset has fewer than two classes.")
        small = small_classes(dataset)  # from its rows, so a dataset read before the warning existed is checked too
        if small:
            raise serializers.ValidationError(too_few_sentence(small))
        return dataset

    def validate(self, attrs):
        arch = ARCHITECTURES[attrs["architecture"]]
        if arch.uses_backbone:
            self._backbone(attrs, arch)
        else:
            for key in ("backbone", "weights", "mode"):
                attrs.pop(key, None)
        # Left out: from the dataset (its typical side within the architecture's limits, its colours).
        input_defaults.fill_input(attrs, arch, attrs["dataset"])
        if attrs["image_size"] < arch.min_image_size:
            raise serializers.ValidationError({"image_size": [
                f"{arch.title} needs images of at least {arch.min_image_size}x{arch.min_image_size} pixels."]})
        if not arch.uses_backbone and not self.context.get("memory_checked"):  # a sweep checks its largest once
            try:
                limits.check_training_memory(attrs["architecture"], attrs["image_size"],
                                             1 if attrs["color_mode"] == "grayscale" else 3,
                                             len(attrs["dataset"].classes), attrs["batch_size"], inputs.describe)
            except limits.LaunchRefused as exc:
                raise serializers.ValidationError({"batch_size": [str(exc)]}) from None
        inputs.record_dataset(attrs)
        return attrs

    def _backbone(self, attrs: dict, arch) -> None:
        """Transfer and feature models read what their backbone reads; fine-tuning needs a Keras backbone."""
        if arch.fixed_backbone and attrs.get("backbone") not in (None, "", arch.default_backbone):
            raise serializers.ValidationError({"backbone": [
                f"{arch.title} always uses {arch.default_backbone}; choose 'transfer' for another backbone."]})
        choice = inputs.check_backbone(attrs, self.context["request"].user, arch.default_backbone)
        if arch.family == "features":
            attrs.pop("mode", None)
        elif attrs["mode"] == "finetune":
            if not choice.fine_tunes:
                raise serializers.ValidationError({"mode": [
                    "Only Keras backbones can be fine-tuned; a TensorFlow Lite file is frozen. Use extract."]})
            for name, value in MODE_DEFAULTS["finetune"].items():  # a slow rate and flips, unless chosen
                if name not in self.initial_data:
                    attrs[name] = value
        attrs["image_size"] = choice.image_size
        attrs["color_mode"] = "grayscale" if choice.channels == 1 else "rgb"


@register
class Train(TrainingKind):
    name = "train"
    label = "Training"
    work = "jobs.training.train"
    declaration = params.TRAIN
    params = TrainParams
    final_objective = Objective("test_accuracy", "Test accuracy", "max", False)
    sweep_main = ("image_size", "epochs", "batch_size", "optimizer", "learning_rate", "mode")
    title_template = "jobs/sections/train_title.html"
    sections = ("jobs/sections/classifier_headline.html", "jobs/sections/curves.html",
                "jobs/sections/classifier_eval.html", "jobs/sections/features.html")
    view = "classifier"

    def verdict(self, result, metrics):
        return classifier_verdict(result, metrics)
