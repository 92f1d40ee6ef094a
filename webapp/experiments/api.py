"""REST endpoints for jobs: list, launch, read, cancel. Every query is scoped to the owner,
so another user's job id answers 404, exactly like an id that does not exist."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from webapp.api_schema import DetailSerializer
from webapp.experiments import deletion, job_lists
from webapp.experiments.input_defaults import launch_warnings
from webapp.experiments.models import Project, Tag
from webapp.experiments.serializers import (
    JobBulkDeletedSerializer,
    JobBulkDeleteSerializer,
    JobCreateSerializer,
    JobEditSerializer,
    JobSerializer,
    ProjectSerializer,
)
from webapp.jobs import live, registry
from webapp.jobs.launch import (
    ResumeRefused,
    cancel_job,
    launch_job,
    rerun_params,
    resume_job,
)
from webapp.jobs.limits import LaunchRefused
from webapp.jobs.models import Job
from webapp.jobs.public import relative_paths


class JobCreatedSerializer(JobSerializer):
    """The new job, as GET answers it, with sentences about settings that will likely disappoint."""

    warnings = serializers.ListField(child=serializers.CharField(), read_only=True, help_text=(
        "Plain sentences about a launch that starts but will likely disappoint, e.g. grayscale input for "
        "classes that differ by colour; empty when there is nothing to say."))

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "warnings"]
        read_only_fields = fields


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = JobSerializer
    queryset = Job.objects.none()  # for the schema's types only: get_queryset() scopes to the owner

    def get_queryset(self):
        return Job.objects.filter(owner=self.request.user).prefetch_related("metrics", "tags").select_related(
            "trained_model", "project")

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "live": getattr(self, "_live", {})}

    def get_serializer_class(self):
        return job_lists.JobRowSerializer if self.action == "list" else JobSerializer

    @extend_schema(parameters=[job_lists.JobListQuery],
                   responses={200: job_lists.JobRowSerializer(many=True), 400: DetailSerializer})
    def list(self, request, *args, **kwargs):
        """A page of your runs, filtered, searched and sorted (webapp/experiments/job_lists.py); each row
        carries its summary numbers and validation curve, not its epochs."""
        jobs = job_lists.rows(self.paginate_queryset(job_lists.jobs_for(request)))
        self._live = live.read_many([j.id for j in jobs if j.status == Job.Status.RUNNING])
        return self.get_paginated_response(self.get_serializer(jobs, many=True).data)

    def retrieve(self, request, *args, **kwargs):
        job = self.get_object()
        self._live = live.read_many([job.id]) if job.status == Job.Status.RUNNING else {}
        log = live.read_log(job.id)
        if not request.user.is_staff:  # see webapp/jobs/public.py
            log = [relative_paths(line) for line in log]
        return Response({**self.get_serializer(job).data, "log_tail": log})

    @extend_schema(request=JobCreateSerializer, responses={201: JobCreatedSerializer})
    def create(self, request, *args, **kwargs):
        incoming = JobCreateSerializer(data=request.data, context={"request": request})
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        try:
            job = launch_job(request.user, data["kind"], data["params"], data.get("queue"),
                             dataset=data.get("dataset_obj"))
        except LaunchRefused as exc:
            return Response({"detail": str(exc)}, status=exc.status)
        # A valid launch that will likely disappoint (grayscale for classes that differ by colour) starts
        # anyway; "warnings" says why in sentences, as the Train form does before Start.
        warnings = launch_warnings(data["kind"], data["params"], data.get("dataset_obj"))
        return Response({**JobSerializer(job, context={"request": request}).data, "warnings": warnings},
                        status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={202: JobSerializer, 400: DetailSerializer, 409: DetailSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Continue a failed or cancelled training job from its last checkpoint; 400 with the reason when
        resuming cannot help it (its inputs were refused, or it left no checkpoint)."""
        job = self.get_object()
        try:
            resumed = resume_job(job.id)
        except ResumeRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        except LaunchRefused as exc:
            return Response({"detail": str(exc)}, status=exc.status)
        if not resumed:
            return Response({"detail": "Only a failed or cancelled training job can be resumed."},
                            status=status.HTTP_409_CONFLICT)
        job.refresh_from_db()
        return Response(self.get_serializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=JobEditSerializer, responses={200: JobSerializer})
    def partial_update(self, request, *args, **kwargs):
        """File a run in a project, tag it, or write a note about it."""
        job = self.get_object()
        edit = JobEditSerializer(data=request.data, partial=True)
        edit.is_valid(raise_exception=True)
        data = edit.validated_data
        with transaction.atomic():
            if "project" in data:
                job.project = Project.objects.get_or_create(owner=request.user, name=data["project"])[0]
            if "note" in data:
                job.note = data["note"]
            job.save(update_fields=["project", "note", "updated_at"])
            if "tags" in data:
                job.tags.set([Tag.objects.get_or_create(owner=request.user, name=name)[0] for name in data["tags"]])
        return Response(self.get_serializer(self.get_queryset().get(id=job.id)).data)

    @extend_schema(request=None, responses={201: JobSerializer, 409: DetailSerializer})
    @action(detail=True, methods=["post"])
    def rerun(self, request, pk=None):
        """A new job with the same inputs as this one (dataset, parameters, seed), in the same project
        and with the same tags; its record names the run it repeats."""
        job = self.get_object()
        if not registry.get(job.kind).public:
            return Response({"detail": f"{job.get_kind_display()} jobs start by themselves; they cannot be run "
                                       "again by hand."}, status=status.HTTP_409_CONFLICT)
        try:
            params = rerun_params(job)
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        incoming = JobCreateSerializer(data={"kind": job.kind, "params": params, "queue": job.queue},
                                       context={"request": request})
        if not incoming.is_valid():
            return Response({"detail": "This run cannot be repeated as it was: " + first_error(incoming.errors)},
                            status=status.HTTP_409_CONFLICT)
        data = incoming.validated_data
        try:
            again = launch_job(request.user, job.kind, data["params"], job.queue, dataset=data.get("dataset_obj"),
                               project=job.project, tags=list(job.tags.all()), rerun_of=job)
        except LaunchRefused as exc:
            return Response({"detail": str(exc)}, status=exc.status)
        return Response(JobSerializer(again, context={"request": request}).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={202: JobSerializer, 409: DetailSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job = self.get_object()
        if not cancel_job(job.id):
            return Response({"detail": "This job has already ended; there is nothing to cancel."},
                            status=status.HTTP_409_CONFLICT)
        job.refresh_from_db()
        return Response(self.get_serializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={204: None, 409: DetailSerializer})
    def destroy(self, request, *args, **kwargs):
        """Delete an ended job with its metrics, its trained model and their files. A queued or running job is
        refused (409): cancel it first, since a worker may still be writing its files."""
        try:
            deletion.delete_jobs([self.get_object()])
        except deletion.DeleteRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=JobBulkDeleteSerializer, responses={200: JobBulkDeletedSerializer, 404: DetailSerializer,
                                                               409: DetailSerializer})
    @action(detail=False, methods=["post"], url_path="delete")
    def delete_many(self, request):
        """Delete several jobs at once, all or none: an id that is not one of your jobs answers 404 and a job
        that cannot go yet answers 409 with why, and then nothing is deleted."""
        incoming = JobBulkDeleteSerializer(data=request.data)
        if not incoming.is_valid():
            return Response({"detail": first_error(incoming.errors)}, status=status.HTTP_400_BAD_REQUEST)
        ids = list(dict.fromkeys(incoming.validated_data["ids"]))
        jobs = list(Job.objects.filter(owner=request.user, id__in=ids).select_related("sweep"))
        missing = sorted(set(ids) - {job.id for job in jobs})
        if missing:
            listed = ", ".join(f"#{n}" for n in missing[:10]) + (" and more" if len(missing) > 10 else "")
            raise NotFound(f"You have no job {listed}; nothing was deleted." if len(missing) == 1
                           else f"You have no jobs {listed}; nothing was deleted.")
        try:
            deletion.delete_jobs(jobs)
        except deletion.DeleteRefused as exc:
            return Response({"detail": f"Nothing was deleted. {exc}"}, status=status.HTTP_409_CONFLICT)
        return Response({"deleted": sorted(ids)})


def first_error(errors) -> str:
    """The first message in a DRF error structure, as a sentence."""
    while isinstance(errors, dict | list) and errors:
        errors = next(iter(errors.values())) if isinstance(errors, dict) else errors[0]
    return str(errors)


class ProjectViewSet(viewsets.ViewSet):
    """The user's projects: list them with their run counts, make one, rename one, or delete one
    (its runs move to "Default", which itself cannot be deleted)."""

    serializer_class = ProjectSerializer
    lookup_value_regex = r"\d+"

    def _projects(self, request):
        Project.default_for(request.user)
        return Project.objects.filter(owner=request.user).annotate(job_count=Count("jobs"))

    def _get(self, request, pk):
        project = self._projects(request).filter(pk=pk).first() if str(pk).isdigit() else None
        if project is None:
            raise NotFound("You have no project with this id.")
        return project

    @extend_schema(responses={200: ProjectSerializer(many=True)})
    def list(self, request):
        return Response(ProjectSerializer(self._projects(request), many=True).data)

    @extend_schema(request=ProjectSerializer, responses={201: ProjectSerializer, 409: DetailSerializer})
    def create(self, request):
        incoming = ProjectSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        project, made = Project.objects.get_or_create(owner=request.user, name=incoming.validated_data["name"])
        if not made:
            return Response({"detail": f"You already have a project called {project.name!r}."},
                            status=status.HTTP_409_CONFLICT)
        return Response(ProjectSerializer(self._get(request, project.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: ProjectSerializer})
    def retrieve(self, request, pk=None):
        return Response(ProjectSerializer(self._get(request, pk)).data)

    @extend_schema(request=ProjectSerializer, responses={200: ProjectSerializer, 409: DetailSerializer})
    def partial_update(self, request, pk=None):
        project = self._get(request, pk)
        incoming = ProjectSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        name = incoming.validated_data["name"]
        if project.name == Project.DEFAULT:
            return Response({"detail": "The Default project keeps its name."}, status=status.HTTP_409_CONFLICT)
        if Project.objects.filter(owner=request.user, name=name).exclude(pk=project.pk).exists():
            return Response({"detail": f"You already have a project called {name!r}."},
                            status=status.HTTP_409_CONFLICT)
        Project.objects.filter(pk=project.pk).update(name=name)
        return Response(ProjectSerializer(self._get(request, pk)).data)

    @extend_schema(responses={204: None, 409: DetailSerializer})
    def destroy(self, request, pk=None):
        project = self._get(request, pk)
        if project.name == Project.DEFAULT:
            return Response({"detail": "The Default project cannot be deleted; it holds every run not filed "
                                       "elsewhere."}, status=status.HTTP_409_CONFLICT)
        with transaction.atomic():
            default = Project.default_for(request.user)
            Job.objects.filter(project=project).update(project=default)
            project.sweeps.update(project=default)  # a sweep files its future trials there too
            project.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
