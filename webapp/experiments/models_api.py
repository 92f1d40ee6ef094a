"""Trained models and architectures: read, download, predict; the model zoo's catalogue."""

from __future__ import annotations

import base64

from django.conf import settings
from django.http import FileResponse, Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs.ml.catalog import ARCHITECTURES
from webapp.api_schema import DetailSerializer
from webapp.experiments import deletion, exports_api
from webapp.experiments.api import first_error
from webapp.experiments.kinds.export_model import EXPORT_FORMATS
from webapp.experiments.models import TrainedModel
from webapp.experiments.serializers import JobSerializer
from webapp.jobs import registry
from webapp.jobs.inference import ask
from webapp.jobs.launch import launch_job
from webapp.jobs.limits import LaunchRefused
from webapp.jobs.models import Job


class TrainedModelSerializer(serializers.ModelSerializer):
    share_url = serializers.SerializerMethodField()
    backbone = serializers.SerializerMethodField()
    dataset_name = serializers.SerializerMethodField()
    bleu4 = serializers.SerializerMethodField()

    class Meta:
        model = TrainedModel
        fields = ["id", "name", "task", "architecture", "class_names", "image_size", "channels", "test_accuracy",
                  "bleu4", "backbone", "trained_on", "size_bytes", "job", "dataset", "dataset_name", "created_at",
                  "share_url"]
        read_only_fields = fields

    def get_dataset_name(self, model: TrainedModel) -> str | None:
        """The dataset's name, or None once it was deleted."""
        return model.dataset.name if model.dataset_id else None

    def get_bleu4(self, model: TrainedModel) -> float | None:
        """A caption model's corpus BLEU-4 on its test photos (greedy), from its training run."""
        return model.job.bleu4 if model.task == TrainedModel.Task.CAPTION else None

    def get_backbone(self, model: TrainedModel) -> dict:
        """The backbone the model reads, without where its file sits on the server."""
        return {key: value for key, value in model.backbone.items() if key != "source"}

    def get_share_url(self, model: TrainedModel) -> str | None:
        link = getattr(model, "share_link", None)
        request = self.context.get("request")
        if link is None or request is None:
            return None
        return request.build_absolute_uri(f"/demo/{link.token}/")


class ModelRenameSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, error_messages={
        "blank": "Give the model a name.", "required": "Give the model a name.",
        "max_length": "Keep the name to 200 characters or fewer."})


class ImageSerializer(serializers.Serializer):
    image = serializers.FileField()


# Response shapes, for the OpenAPI schema (/api/schema/).
class PredictionSerializer(serializers.Serializer):
    label = serializers.CharField()
    probability = serializers.FloatField()


class PredictionsSerializer(serializers.Serializer):
    predictions = PredictionSerializer(many=True, help_text="The top 5, most probable first.")


class CaptionSerializer(serializers.Serializer):
    caption = serializers.CharField()


class ReferenceShapeSerializer(serializers.Serializer):
    input_shape = serializers.ListField(child=serializers.IntegerField(), help_text="height, width, channels")
    classes = serializers.IntegerField()


class ArchitectureDefaultsSerializer(serializers.Serializer):
    image_size = serializers.IntegerField()
    color_mode = serializers.ChoiceField(choices=["grayscale", "rgb"])


class ArchitectureSerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    params = serializers.IntegerField(allow_null=True, help_text="Parameters at the reference shape and classes.")
    reference = ReferenceShapeSerializer()
    defaults = ArchitectureDefaultsSerializer()
    min_image_size = serializers.IntegerField()


class LayerSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField()
    output_shape = serializers.CharField()
    params = serializers.IntegerField()


class ArchitectureSummarySerializer(serializers.Serializer):
    architecture = serializers.CharField()
    input_shape = serializers.ListField(child=serializers.IntegerField())
    classes = serializers.IntegerField()
    backbone = serializers.CharField(required=False, help_text="Transfer architectures: the backbone built.")
    layers = LayerSerializer(many=True)
    total_params = serializers.IntegerField()
    trainable_params = serializers.IntegerField()
    non_trainable_params = serializers.IntegerField()


class TrainedModelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = TrainedModelSerializer
    queryset = TrainedModel.objects.none()  # for the schema's types only: get_queryset() scopes to the owner
    parser_classes = [JSONParser, MultiPartParser]  # a rename is JSON; photos come as multipart

    def get_queryset(self):
        return TrainedModel.objects.filter(owner=self.request.user).select_related("job", "dataset", "share_link")

    @extend_schema(request=ModelRenameSerializer, responses={200: TrainedModelSerializer})
    def partial_update(self, request, *args, **kwargs):
        """Rename a model: {"name"}, 1 to 200 characters (spaces around it are dropped)."""
        model = self.get_object()
        incoming = ModelRenameSerializer(data=request.data)
        if not incoming.is_valid():
            return Response({"detail": first_error(incoming.errors), **incoming.errors}, status=400)
        model.name = incoming.validated_data["name"]
        model.save(update_fields=["name"])
        return Response(self.get_serializer(model).data)

    @extend_schema(request=None, responses={204: None, 409: DetailSerializer})
    def destroy(self, request, *args, **kwargs):
        """Delete a model with its files, exports and demo link; 409 with the reason while a queued or running
        job, a running sweep or another model still needs it (webapp/experiments/deletion.py)."""
        model = self.get_object()
        try:
            deletion.delete_model(model)
        except deletion.DeleteRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        model = self.get_object()
        if not model.file_path.exists():
            raise Http404("The model's file is missing on the server.")
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in model.name)[:80]
        return FileResponse(open(model.file_path, "rb"), as_attachment=True,
                            filename=f"{safe}-{model.id}.keras", content_type="application/octet-stream")

    @extend_schema(request={"multipart/form-data": ImageSerializer}, responses={200: PredictionsSerializer})
    @action(detail=True, methods=["post"])
    def predict(self, request, pk=None):
        model = self.get_object()
        upload = request.FILES.get("image")
        if upload is None:
            return Response({"detail": "Send the photo as a multipart field named image."}, status=400)
        if upload.size > settings.PREDICT_MAX_BYTES:
            return Response({"detail": f"This photo is too large; send one under "
                             f"{settings.PREDICT_MAX_BYTES // 2**20} MiB."}, status=413)
        if model.task != TrainedModel.Task.CLASSIFY:
            return Response({"detail": "This is a caption model: ask it for a caption instead."}, status=400)
        answer = ask("inference.predict", model.id, base64.b64encode(upload.read()).decode())
        if "error" in answer:
            return Response({"detail": answer["error"]}, status=400)
        return Response(answer)

    @extend_schema(request={"multipart/form-data": ImageSerializer}, responses={200: CaptionSerializer})
    @action(detail=True, methods=["post"])
    def caption(self, request, pk=None):
        """A caption for one photo, from one of your caption models."""
        model = self.get_object()
        if model.task != TrainedModel.Task.CAPTION:
            return Response({"detail": "This model classifies images; it does not write captions."}, status=400)
        return caption_response(model, request.FILES.get("image"), settings.PREDICT_MAX_BYTES)

    @extend_schema(methods=["GET"], request=None, responses={200: exports_api.ExportRow(many=True)})
    @extend_schema(methods=["POST"], request=exports_api.ExportRequest, responses={201: JobSerializer})
    @action(detail=True, methods=["get", "post"], parser_classes=[JSONParser, MultiPartParser], pagination_class=None)
    def exports(self, request, pk=None):
        """GET: the model's exports with how each did in its own runtime; POST {"format"}: export it (a job)."""
        model = self.get_object()
        if request.method == "GET":
            return Response(exports_api.rows(model))
        incoming = exports_api.ExportRequest(data=request.data)
        incoming.is_valid(raise_exception=True)
        checked = registry.get(Job.Kind.EXPORT_MODEL).params(data={"model": model.id, **incoming.validated_data},
                                                      context={"request": request})
        if not checked.is_valid():
            return Response({"detail": first_error(checked.errors)}, status=status.HTTP_400_BAD_REQUEST)
        try:
            job = launch_job(request.user, Job.Kind.EXPORT_MODEL, dict(checked.validated_data))
        except LaunchRefused as exc:
            return Response({"detail": str(exc)}, status=exc.status)
        return Response(JobSerializer(job, context={"request": request}).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"], url_path=r"exports/(?P<fmt>[a-z0-9_]+)/download")
    def export_download(self, request, pk=None, fmt: str = ""):
        """The exported file of one format (the newest export that ran)."""
        model = self.get_object()
        if fmt not in EXPORT_FORMATS:
            raise Http404(f"There is no export format called {fmt[:40]!r}.")
        answer = exports_api.download(model, fmt)
        if answer is None:
            raise Http404("This model has no finished export in this format.")
        return answer


def caption_response(model: TrainedModel, upload, max_bytes: int) -> Response:
    """Ask the inference worker for a caption of `upload`; 400/413 with a sentence for a bad photo."""
    if upload is None:
        return Response({"detail": "Send the photo as a multipart field named image."}, status=400)
    if upload.size > max_bytes:
        return Response({"detail": f"This photo is too large; send one under {max_bytes // 2**20} MiB."},
                        status=413)
    answer = ask("inference.caption", model.id, base64.b64encode(upload.read()).decode())
    if "error" in answer:
        return Response({"detail": answer["error"]}, status=400)
    return Response({"caption": answer["caption"]})


class ArchitecturesView(APIView):
    """The model zoo: what each architecture is, and its parameter count at its reference shape."""

    @extend_schema(responses={200: ArchitectureSerializer(many=True)})
    def get(self, request):
        return Response([{
            "name": a.name, "title": a.title, "description": a.description, "params": a.reference_params,
            "reference": {"input_shape": list(a.reference_input_shape), "classes": a.reference_classes},
            "defaults": {"image_size": a.default_image_size,
                         "color_mode": "grayscale" if a.default_channels == 1 else "rgb"},
            "min_image_size": a.min_image_size,
        } for a in ARCHITECTURES.values()])


class ArchitectureSummaryView(APIView):
    """The layer table (as model.summary() prints it) at the reference shape or a chosen one.

    Built by the inference worker: the web process never imports TensorFlow.
    """

    @extend_schema(parameters=[
        OpenApiParameter("name", str, OpenApiParameter.PATH, enum=sorted(ARCHITECTURES),
                         description="An architecture of GET /api/architectures/."),
        OpenApiParameter("image_size", int, description="Square side, 1..256 (default: the reference shape's)."),
        OpenApiParameter("color_mode", str, enum=["grayscale", "rgb"]),
        OpenApiParameter("classes", int, description="2..10000 (default: the reference class count)."),
    ], responses={200: ArchitectureSummarySerializer})
    def get(self, request, name: str):
        if name not in ARCHITECTURES:
            raise Http404("No such architecture.")
        arch = ARCHITECTURES[name]
        try:
            size = int(request.query_params.get("image_size", arch.reference_input_shape[0]))
            channels = {"grayscale": 1, "rgb": 3}.get(request.query_params.get("color_mode"),
                                                     arch.reference_input_shape[2])
            classes = int(request.query_params.get("classes", arch.reference_classes))
        except ValueError:
            return Response({"detail": "image_size and classes are whole numbers."}, status=400)
        # Building the model costs memory: VGG's dense layers grow with the square of the size.
        if not (1 <= size <= 256 and 2 <= classes <= 10_000):
            return Response({"detail": "For a summary, image_size must be 1..256 and classes 2..10000."},
                            status=400)
        answer = ask("inference.describe_architecture", name, [size, size, channels], classes)
        if "error" in answer:
            return Response({"detail": answer["error"]}, status=400)
        return Response(answer)
