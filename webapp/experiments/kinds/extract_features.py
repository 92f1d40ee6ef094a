"""Feature extraction: run a backbone once over a dataset; later jobs on the same images reuse the result."""

from __future__ import annotations

from rest_framework import serializers

from webapp.experiments import kind_inputs as inputs
from webapp.experiments import params
from webapp.jobs.registry import JobKind, register


class FeatureParams(params.FEATURES.serializer_base("FeatureFields"), inputs.DatasetBackboneParams):
    """Run a backbone once over a dataset; later jobs on the same data and backbone reuse the result."""

    dataset = serializers.IntegerField(help_text="A ready dataset of yours (classification or captions).")

    def validate_dataset(self, dataset_id: int):
        return inputs.ready_dataset(dataset_id, self.context["request"].user, None)


@register
class ExtractFeatures(JobKind):
    name = "extract_features"
    label = "Feature extraction"
    work = "jobs.features.extract_features"
    time_limit = 24 * 3600
    declaration = params.FEATURES
    params = FeatureParams
    title_template = "jobs/sections/features_title.html"
    sections = ("jobs/sections/features.html",)
    after_sections = ()
    view = "features"
