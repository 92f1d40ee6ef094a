"""Model export: convert a trained classifier to another format and check it against the original (jobs.exports)."""

from __future__ import annotations

from rest_framework import serializers

from jobs.ml.export_formats import FORMATS
from jobs.queues import Queue
from webapp.experiments.models import TrainedModel
from webapp.jobs.registry import JobKind, register

EXPORT_FORMATS = tuple(FORMATS)  # the API's choices and the schema's enum


class ExportParams(serializers.Serializer):
    """Convert a trained classifier to another format and check it against the original (jobs.exports)."""

    model = serializers.IntegerField(help_text="A trained classifier of yours.")
    format = serializers.ChoiceField(choices=EXPORT_FORMATS)

    def validate_model(self, model_id: int) -> int:
        model = TrainedModel.objects.filter(id=model_id, owner=self.context["request"].user).first()
        if model is None:
            raise serializers.ValidationError("You have no model with this id.")
        if model.task != TrainedModel.Task.CLASSIFY:
            raise serializers.ValidationError(
                "Caption models are kept as .keras files only: their beam search runs in Python around the "
                "network, so no single exported graph would caption a photo.")
        if not model.exportable:
            raise serializers.ValidationError(
                "This model reads its features from a TensorFlow Lite backbone, which runs in its own interpreter "
                "before the Keras head; the two cannot be joined into one exported file.")
        if model.dataset_id is None:
            raise serializers.ValidationError("The dataset this model was trained on was deleted, so an export "
                                              "could not be checked against the original.")
        return model_id


@register
class ExportModel(JobKind):
    name = "export_model"
    label = "Model export"
    work = "jobs.exports.export_model"
    time_limit = 3 * 3600
    grace = 120
    params = ExportParams
    queue = Queue.CPU
    heading_template = "jobs/sections/export_verdict.html"
    title_template = "jobs/sections/export_title.html"
    sections = ("jobs/sections/export.html",)
    after_sections = ()
    view = "export"
    scripts = ("js/exports.js",)

    def page_context(self, job, user) -> dict:
        """The model it exported (None once deleted) and the format's title, for its title and the way back."""
        params = job.params or {}
        return {"exported": TrainedModel.objects.filter(id=params.get("model"), owner=user).first(),
                "exported_title": FORMATS.get(params.get("format"), ("",))[0]}
