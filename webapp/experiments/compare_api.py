"""`GET /api/compare/?jobs=1,2,3`: 2 to 10 runs side by side (webapp.experiments.compare builds it).

Only the requesting user's runs: an id that is not theirs answers 404, exactly like one that does
not exist. Fewer than 2 ids, more than 10, or anything that is not a list of ids answers 400 with a
sentence. `?full=1` sends every epoch of the curves instead of at most 200 points per series.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.api_schema import DetailSerializer
from webapp.experiments.compare import (
    MAX_POINTS,
    MAX_RUNS,
    MIN_RUNS,
    CompareRefused,
    RunsNotFound,
    compare_runs,
    parse_ids,
    truthy,
)

# Response shapes, for the OpenAPI schema (/api/schema/). The view answers plain dicts built by
# webapp.experiments.compare; tests/test_schema.py checks the two agree.

@extend_schema_field({"description": "Any JSON value (a parameter's value; null where a run has no such parameter)."})
class AnyValueField(serializers.JSONField):
    pass


@extend_schema_field({"type": "array", "description": "[epoch, value, seconds since the run started (or null)]",
                      "items": {"type": "array", "minItems": 3, "maxItems": 3,
                                "items": {"type": "number", "nullable": True}}})
class PointsField(serializers.JSONField):
    pass


class CompareJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    label = serializers.CharField(help_text='How the page names the run: "#12".')
    kind = serializers.CharField()
    kind_label = serializers.CharField()
    status = serializers.CharField()
    architecture = serializers.CharField(allow_null=True)
    dataset = serializers.IntegerField(allow_null=True)
    dataset_name = serializers.CharField(allow_null=True)
    dataset_hash = serializers.CharField(allow_null=True, help_text="The content hash of the images it read.")
    project = serializers.CharField(allow_null=True)
    tags = serializers.ListField(child=serializers.CharField())
    note = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_seconds = serializers.FloatField(allow_null=True)
    device = serializers.CharField(allow_null=True)
    seed = AnyValueField(allow_null=True)
    code = serializers.CharField(allow_null=True, help_text='The code version: "git:<commit>[+changes]".')
    rerun_of = serializers.IntegerField(allow_null=True, help_text="The run this one repeats.")
    test_accuracy = serializers.FloatField(allow_null=True)
    test_loss = serializers.FloatField(allow_null=True)
    best_val_accuracy = serializers.FloatField(allow_null=True)
    best_val_loss = serializers.FloatField(allow_null=True)
    bleu4 = serializers.FloatField(allow_null=True)
    best_epoch = serializers.IntegerField(allow_null=True)
    epochs_run = serializers.IntegerField(allow_null=True)
    evaluated_on = serializers.CharField(allow_null=True)
    evaluated_images = serializers.IntegerField(allow_null=True, help_text="Images with a stored prediction.")
    model = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True)


class CompareRunCurvesSerializer(serializers.Serializer):
    job = serializers.IntegerField()
    best_epoch = serializers.IntegerField(allow_null=True)
    epochs = serializers.IntegerField(help_text="Epochs recorded.")
    downsampled = serializers.BooleanField(help_text="Whether a series here holds fewer points than epochs.")
    series = serializers.DictField(child=PointsField(), help_text="Per metric name (loss, val_accuracy, ...).")


class CompareMetricsSerializer(serializers.Serializer):
    names = serializers.ListField(child=serializers.CharField(), help_text="Every metric some run recorded.")
    full = serializers.BooleanField()
    max_points = serializers.IntegerField(allow_null=True, help_text=f"{MAX_POINTS}, or null with ?full=1.")
    runs = CompareRunCurvesSerializer(many=True)


class CompareExampleSerializer(serializers.Serializer):
    path = serializers.CharField(help_text="Inside the dataset's images.")
    true = serializers.CharField()
    a_predicted = serializers.CharField()
    b_predicted = serializers.CharField()
    item = serializers.IntegerField(allow_null=True)
    thumb = serializers.CharField(allow_null=True)
    image = serializers.CharField(allow_null=True)


class CompareExamplesSerializer(serializers.Serializer):
    a_only_right = CompareExampleSerializer(many=True)
    b_only_right = CompareExampleSerializer(many=True)


class ComparePairSerializer(serializers.Serializer):
    a = serializers.IntegerField()
    b = serializers.IntegerField()
    comparable = serializers.BooleanField(help_text="Whether both were scored on the same test images.")
    reason = serializers.CharField(allow_null=True, help_text="Why not, when they cannot be compared.")
    images = serializers.IntegerField(allow_null=True)
    both_right = serializers.IntegerField(allow_null=True)
    both_wrong = serializers.IntegerField(allow_null=True)
    a_only_right = serializers.IntegerField(allow_null=True)
    b_only_right = serializers.IntegerField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True, help_text="McNemar's exact two-sided test on the two counts.")
    sentence = serializers.CharField(allow_null=True)
    dataset = serializers.IntegerField(allow_null=True)
    examples = CompareExamplesSerializer()


class CompareBleuSerializer(serializers.Serializer):
    bleu1 = serializers.FloatField(allow_null=True)
    bleu2 = serializers.FloatField(allow_null=True)
    bleu3 = serializers.FloatField(allow_null=True)
    bleu4 = serializers.FloatField(allow_null=True)


class CompareCaptionRunSerializer(serializers.Serializer):
    job = serializers.IntegerField()
    greedy = CompareBleuSerializer()
    beam = CompareBleuSerializer(allow_null=True)
    baseline = CompareBleuSerializer(allow_null=True)
    beam_width = serializers.IntegerField(allow_null=True)
    baseline_caption = serializers.CharField(allow_null=True)


class CompareCaptionSerializer(serializers.Serializer):
    job = serializers.IntegerField()
    greedy = serializers.CharField(allow_blank=True)
    beam = serializers.CharField(allow_blank=True)


class ComparePhotoSerializer(serializers.Serializer):
    key = serializers.CharField()
    dataset = serializers.IntegerField(allow_null=True)
    item = serializers.IntegerField(allow_null=True)
    thumb = serializers.CharField(allow_null=True)
    image = serializers.CharField(allow_null=True)
    references = serializers.ListField(child=serializers.CharField())
    captions = CompareCaptionSerializer(many=True)


class CompareCaptionsSerializer(serializers.Serializer):
    runs = CompareCaptionRunSerializer(many=True)
    photos = ComparePhotoSerializer(many=True, help_text="Test photos at least two caption models wrote about.")
    note = serializers.CharField(allow_null=True)


class CompareDifferenceSerializer(serializers.Serializer):
    metric = serializers.CharField()
    label = serializers.CharField()
    original = serializers.FloatField()
    repeat = serializers.FloatField()
    difference = serializers.FloatField(help_text="repeat - original")


class CompareRepeatSerializer(serializers.Serializer):
    original = serializers.IntegerField()
    repeat = serializers.IntegerField()
    same_seed = serializers.BooleanField()
    differences = CompareDifferenceSerializer(many=True)
    sentence = serializers.CharField()


class CompareSerializer(serializers.Serializer):
    jobs = CompareJobSerializer(many=True, help_text="The runs, in the order asked for, with their summary numbers.")
    params = serializers.DictField(child=serializers.ListField(child=AnyValueField(allow_null=True)),
                                   help_text="Every parameter: one value per run, in the order of `jobs`.")
    differing = serializers.ListField(child=serializers.CharField(), help_text="The parameters whose values differ.")
    param_labels = serializers.DictField(child=serializers.CharField(),
                                         help_text="How pages name each parameter (its declaration's label).")
    metrics = CompareMetricsSerializer()
    pairs = ComparePairSerializer(many=True, help_text="Every pair of classifiers, compared image by image or not.")
    captions = CompareCaptionsSerializer()
    repeats = CompareRepeatSerializer(many=True)
    active = serializers.BooleanField(help_text="Whether a run is still queued or running.")
    generated_at = serializers.DateTimeField()


class CompareView(APIView):
    """Compare 2 to 10 of your runs: parameters, curves, summary numbers, and classifiers image by image."""

    @extend_schema(parameters=[
        OpenApiParameter("jobs", str, required=True,
                         description=f"{MIN_RUNS} to {MAX_RUNS} of your job ids separated by commas, e.g. 1,2,3."),
        OpenApiParameter("full", bool, description=f"Every epoch of the curves (default: at most {MAX_POINTS} "
                                                   "points per series, first, last and best epoch kept)."),
    ], responses={200: CompareSerializer, 400: DetailSerializer, 404: DetailSerializer})
    def get(self, request):
        try:
            ids = parse_ids(request.query_params.get("jobs"))
        except CompareRefused as exc:
            return Response({"detail": str(exc)}, status=400)
        try:
            data = compare_runs(request.user, ids, full=truthy(request.query_params.get("full")))
        except RunsNotFound as exc:
            raise NotFound(str(exc)) from exc
        return Response(data)
