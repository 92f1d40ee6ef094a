"""REST endpoints for datasets and resumable uploads; every query is scoped to the owner."""

from __future__ import annotations

import re

from django.conf import settings
from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response

from webapp.api_schema import DetailSerializer
from webapp.datasets import services
from webapp.datasets.models import Dataset, Upload
from webapp.datasets.serializers import (
    DatasetCreateSerializer,
    DatasetItemPageSerializer,
    DatasetItemSerializer,
    DatasetListSerializer,
    DatasetSerializer,
    ReferenceSerializer,
    RereadSerializer,
    UploadSerializer,
)
from webapp.datasets.sources import SOURCES
from webapp.jobs import live
from webapp.jobs.models import Job

CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
MAX_ITEMS_PAGE = 500


class TooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


def rejected(exc: services.UploadRejected) -> Response:
    return Response({"detail": str(exc), **exc.extra}, status=exc.status)


class DatasetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                     viewsets.GenericViewSet):
    serializer_class = DatasetSerializer
    queryset = Dataset.objects.none()  # for the schema's types only: get_queryset() scopes to the owner
    parser_classes = [MultiPartParser, JSONParser]

    def get_queryset(self):
        return Dataset.objects.filter(owner=self.request.user)

    def get_serializer_class(self):
        return DatasetListSerializer if self.action == "list" else DatasetSerializer

    def get_serializer_context(self):
        context = super().get_serializer_context()
        jobs = Job.objects.filter(owner=self.request.user, kind=Job.Kind.INGEST, status=Job.Status.RUNNING)
        context["live"] = live.read_many(list(jobs.values_list("id", flat=True)))
        return context

    def initial(self, request, *args, **kwargs):
        # Refuse an oversized multipart body before Django streams gigabytes of it to disk.
        length = request.META.get("CONTENT_LENGTH")
        if request.method == "POST" and length and length.isdigit():
            try:
                services.check_size(int(length))
            except services.UploadRejected as exc:
                raise TooLarge(str(exc)) from exc
        super().initial(request, *args, **kwargs)

    @extend_schema(request=DatasetCreateSerializer, responses={201: DatasetSerializer})
    def create(self, request, *args, **kwargs):
        incoming = DatasetCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        try:
            if data.get("upload"):
                upload = Upload.objects.filter(owner=request.user, id=data["upload"]).first()
                if upload is None:
                    raise NotFound("No such upload.")
                dataset = services.dataset_from_upload(request.user, upload, data.get("name", ""),
                                                       data["kind"])
            else:
                dataset = services.dataset_from_file(request.user, data["file"], data.get("name", ""),
                                                     data["kind"])
        except services.UploadRejected as exc:
            return rejected(exc)
        return Response(self.get_serializer(dataset).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, dataset):
        services.delete_dataset(dataset)

    @extend_schema(request=ReferenceSerializer, responses={201: DatasetSerializer, 200: DatasetSerializer})
    @action(detail=False, methods=["post"])
    def reference(self, request):
        """Import a built-in dataset (offline) or a reference dataset (downloaded by Keras). One you already
        have (ready or being read) is answered with 200 and that dataset, not made a second time."""
        incoming = ReferenceSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        source = SOURCES.get(incoming.validated_data["name"])
        if source is None:
            raise ValidationError({"name": [f"Unknown dataset; choose one of {', '.join(SOURCES)}."]})
        existing = services.existing_source(request.user, source.source)
        if existing is not None:
            return Response(self.get_serializer(existing).data, status=status.HTTP_200_OK)
        try:
            dataset = services.dataset_from_source(request.user, source.source, source.title, source.kind)
        except services.UploadRejected as exc:
            return rejected(exc)
        return Response(self.get_serializer(dataset).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RereadSerializer, responses={202: DatasetSerializer, 409: DetailSerializer})
    @action(detail=True, methods=["post"])
    def reread(self, request, pk=None):
        """Read a failed dataset's kept archive again as another kind: class folders uploaded as captions
        (its warnings hold "looks_like_classification") become a classification dataset, without uploading
        the archive a second time."""
        dataset = self.get_object()
        incoming = RereadSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        try:
            dataset = services.read_again(dataset, incoming.validated_data["kind"])
        except services.UploadRejected as exc:
            return rejected(exc)
        return Response(self.get_serializer(dataset).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(parameters=[
        OpenApiParameter("label", str), OpenApiParameter("split", str),
        OpenApiParameter("limit", int), OpenApiParameter("offset", int),
    ], responses={200: DatasetItemPageSerializer})
    @action(detail=True, methods=["get"])
    def items(self, request, pk=None):
        dataset = self.get_object()
        items = dataset.items.all()
        if "label" in request.query_params:
            items = items.filter(label=request.query_params["label"])
        if split := request.query_params.get("split"):
            items = items.filter(split=split)
        if q := request.query_params.get("q"):
            items = items.filter(Q(path__icontains=q) | Q(original__icontains=q))
        try:
            limit = min(MAX_ITEMS_PAGE, max(1, int(request.query_params.get("limit", 50))))
            offset = max(0, int(request.query_params.get("offset", 0)))
        except ValueError:
            raise ValidationError({"limit": ["limit and offset are whole numbers."]}) from None
        page = items[offset:offset + limit]
        return Response({"count": items.count(), "results": DatasetItemSerializer(page, many=True).data})


class UploadViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                    viewsets.GenericViewSet):
    """Resumable uploads: POST {filename, size}, then PUT chunks with a Content-Range header,
    GET to learn the offset after a dropped connection, and finally POST /api/datasets/ with
    `upload`: <id>."""

    serializer_class = UploadSerializer
    queryset = Upload.objects.none()  # for the schema's types only: get_queryset() scopes to the owner
    parser_classes = [JSONParser]

    def get_queryset(self):
        return Upload.objects.filter(owner=self.request.user)

    def create(self, request, *args, **kwargs):
        incoming = UploadSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        try:
            upload = services.start_upload(request.user, incoming.validated_data["filename"],
                                           incoming.validated_data["size"])
        except services.UploadRejected as exc:
            return rejected(exc)
        return Response(UploadSerializer(upload).data, status=status.HTTP_201_CREATED)

    @extend_schema(request={"application/octet-stream": bytes}, responses={200: UploadSerializer})
    def update(self, request, *args, **kwargs):
        upload = self.get_object()
        match = CONTENT_RANGE.match(request.headers.get("Content-Range", ""))
        if not match:
            return Response({"detail": "Send each chunk with a header Content-Range: bytes START-END/TOTAL."},
                            status=status.HTTP_400_BAD_REQUEST)
        start, end, total = (int(g) for g in match.groups())
        if end - start + 1 > settings.UPLOAD_CHUNK_SIZE * 2:
            return Response({"detail": "This chunk is too large; send at most "
                             f"{settings.UPLOAD_CHUNK_SIZE} bytes per request."}, status=413)
        try:
            upload = services.append_chunk(upload, start, end, total, request.stream or request._request)
        except services.UploadRejected as exc:
            return rejected(exc)
        return Response(UploadSerializer(upload).data)

    def perform_destroy(self, upload):
        services.discard_upload(upload)
