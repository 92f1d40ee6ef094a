"""Caption training: the merge model on a caption dataset's features (workflow 4 of PRODUCT.md)."""

from __future__ import annotations

from rest_framework import serializers

from webapp.experiments import kind_inputs as inputs
from webapp.experiments import params
from webapp.experiments.verdicts import caption_verdict
from webapp.jobs.registry import Objective, TrainingKind, register


class CaptionParams(params.CAPTION.serializer_base("CaptionFields"), inputs.DatasetBackboneParams):
    """The merge captioning model on a caption dataset (workflow 4 of PRODUCT.md); its tunable
    parameters are declared in `params.CAPTION`."""

    dataset = serializers.IntegerField(help_text="A ready caption dataset of yours.")
    architecture = serializers.ChoiceField(choices=["merge"], default="merge")

    def validate_dataset(self, dataset_id: int):
        dataset = inputs.ready_dataset(dataset_id, self.context["request"].user, "captions")
        if not dataset.num_captions:
            raise serializers.ValidationError("This dataset has no captions.")
        return dataset


@register
class TrainCaptioner(TrainingKind):
    name = "train_captioner"
    label = "Caption training"
    work = "jobs.captioning.train_captioner"
    declaration = params.CAPTION
    params = CaptionParams
    final_objective = Objective("bleu4", "BLEU-4", "max", False)
    sweep_main = ("epochs", "batch_size", "learning_rate", "units", "dropout")
    title_template = "jobs/sections/captioner_title.html"
    sections = ("jobs/sections/caption_headline.html", "jobs/sections/caption_curves.html",
                "jobs/sections/caption_eval.html", "jobs/sections/features.html")
    view = "captioner"

    def verdict(self, result, metrics):
        return caption_verdict(result)
