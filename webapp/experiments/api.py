"""REST endpoints for jobs: list, launch, read, cancel. Every query is scoped to the owner,
so another user's job id answers 404, exactly like an id that does not exist."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.response import Response

from webapp.experiments import live
from webapp.experiments.kinds import QueueUnavailable, cancel_job, launch_job, resume_job
from webapp.experiments.limits import LaunchRefused
from webapp.experiments.models import Job
from webapp.experiments.public import relative_paths
from webapp.experiments.serializers import DetailSerializer, JobCreateSerializer, JobSerializer

MAX_LIST = 200


class QueueUnavailableError(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "queue_unavailable"


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = JobSerializer
    queryset = Job.objects.none()  # for the schema's types only: get_queryset() scopes to the owner

    def get_queryset(self):
        jobs = Job.objects.filter(owner=self.request.user).prefetch_related("metrics").select_related(
            "trained_model")
        if self.request.query_params.get("status") == "active":
            jobs = jobs.filter(status__in=Job.ACTIVE)
        return jobs

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "live": getattr(self, "_live", {})}

    def list(self, request, *args, **kwargs):
        try:
            limit = min(MAX_LIST, max(1, int(request.query_params.get("limit", 50))))
        except ValueError:
            limit = 50
        jobs = list(self.get_queryset()[:limit])
        self._live = live.read_many([j.id for j in jobs if j.status == Job.Status.RUNNING])
        return Response(self.get_serializer(jobs, many=True).data)

    def retrieve(self, request, *args, **kwargs):
        job = self.get_object()
        self._live = live.read_many([job.id]) if job.status == Job.Status.RUNNING else {}
        log = live.read_log(job.id)
        if not request.user.is_staff:  # see webapp/experiments/public.py
            log = [relative_paths(line) for line in log]
        return Response({**self.get_serializer(job).data, "log_tail": log})

    @extend_schema(request=JobCreateSerializer, responses={201: JobSerializer})
    def create(self, request, *args, **kwargs):
        incoming = JobCreateSerializer(data=request.data, context={"request": request})
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        try:
            job = launch_job(request.user, data["kind"], data["params"], data.get("queue"),
                             dataset=data.get("dataset_obj"))
        except QueueUnavailable as exc:
            raise QueueUnavailableError(str(exc)) from exc
        except LaunchRefused as exc:
            return Response({"detail": str(exc)}, status=exc.status)
        return Response(JobSerializer(job, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={202: JobSerializer, 409: DetailSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Continue a failed or cancelled training job from its last checkpoint."""
        job = self.get_object()
        try:
            resumed = resume_job(job.id)
        except QueueUnavailable as exc:
            raise QueueUnavailableError(str(exc)) from exc
        except LaunchRefused as exc:
            return Response({"detail": str(exc)}, status=exc.status)
        if not resumed:
            return Response({"detail": "Only a failed or cancelled training job can be resumed."},
                            status=status.HTTP_409_CONFLICT)
        job.refresh_from_db()
        return Response(self.get_serializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: JobSerializer, 409: DetailSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job = self.get_object()
        if not cancel_job(job.id):
            return Response({"detail": "This job has already ended; there is nothing to cancel."},
                            status=status.HTTP_409_CONFLICT)
        job.refresh_from_db()
        return Response(self.get_serializer(job).data, status=status.HTTP_202_ACCEPTED)
