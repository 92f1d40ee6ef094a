"""REST endpoints for sweeps: list, launch (or estimate with ?dry_run=1), read, cancel, extend, promote.

Every query is scoped to the owner: another user's sweep id answers 404, like one that does not exist.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.db.models import Max
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from webapp.api_schema import DetailSerializer
from webapp.jobs.launch import QueueUnavailable
from webapp.jobs.limits import LaunchRefused, check_active_jobs
from webapp.jobs.models import Job
from webapp.redis_client import redis_problem
from webapp.sweeps import engine, estimate
from webapp.sweeps.models import Sweep
from webapp.sweeps.serializers import (
    DryRunDoc,
    ExtendSerializer,
    PromotedDoc,
    PromoteSerializer,
    SweepCreateSerializer,
    SweepDoc,
    SweepRowDoc,
    describe_sweep,
    mean_epochs,
    project_for,
    sweep_row,
)

TRUE = ("1", "true", "yes")


def plan(data: dict) -> dict:
    """The estimate for a checked request, its trials trimmed to the time budget when one is given."""
    trials, parallel, pruning = data["trials"], data["parallel"], data.get("pruning") or ""
    measured = estimate.measure(data["kind"], data["validated"], data["queue"], data["dataset_obj"], mean_epochs(data))
    budget = data.get("budget_minutes")
    fit = estimate.within_budget(measured, trials, parallel, pruning, budget * 60) if budget else trials
    result = estimate.figures(measured, fit, parallel, pruning)
    result["text"] = estimate.describe(result, data["queue"])
    if fit < trials:
        result["trimmed_from"] = trials
        result["text"] += f" Trimmed from {trials} to {fit} trials to fit the {budget:g} min budget."
    return result


class SweepViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = Sweep.objects.none()  # for the schema's types only: get_queryset() scopes to the owner
    serializer_class = SweepDoc  # the schema's shapes; the answers are built by describe_sweep and sweep_row

    def get_queryset(self):
        return Sweep.objects.filter(owner=self.request.user).select_related("project", "dataset")

    @extend_schema(responses={200: SweepRowDoc(many=True)})
    def list(self, request, *args, **kwargs):
        """A page of your sweeps, newest first."""
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([sweep_row(sweep) for sweep in page])

    @extend_schema(responses={200: SweepDoc})
    def retrieve(self, request, *args, **kwargs):
        """The sweep, its trials (each a job) in order, the best trial, and what pruning saved."""
        sweep = self.get_object()
        if sweep.status == Sweep.Status.RUNNING and _stalled(sweep):
            engine.advance(sweep.id, wait=0)  # a trial ended where nobody moved the sweep on (a lost worker)
            sweep.refresh_from_db()
        return Response(self._read(sweep))

    @staticmethod
    def _read(sweep: Sweep) -> dict:
        trials = list(sweep.jobs.filter(trial_number__isnull=False).order_by("trial_number")
                      .prefetch_related("metrics"))
        promoted = list(sweep.jobs.filter(trial_number__isnull=True).order_by("id"))
        return describe_sweep(sweep, trials, promoted)

    @extend_schema(request=SweepCreateSerializer, parameters=[OpenApiParameter(
        "dry_run", OpenApiTypes.BOOL, description="Only estimate the time; create nothing (200).")],
        responses={201: SweepDoc, 200: DryRunDoc, 400: OpenApiTypes.OBJECT})
    def create(self, request, *args, **kwargs):
        """Start a sweep: its trials are jobs in its project; with ?dry_run=1, only the time estimate."""
        incoming = SweepCreateSerializer(data=request.data, context={"request": request})
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        figures = plan(data)
        if str(request.query_params.get("dry_run", "")).lower() in TRUE:
            return Response({"estimate": figures, "trials": figures["trials"], "queue": data["queue"]})
        problem = redis_problem()
        if problem:
            raise QueueUnavailable(problem)
        try:
            check_active_jobs(request.user)
        except LaunchRefused as exc:
            return Response({"detail": str(exc)}, status=exc.status)
        budget = data.get("budget_minutes")
        sweep = Sweep.objects.create(
            owner=request.user, project=project_for(request.user, data.get("project")), dataset=data["dataset_obj"],
            name=data.get("name", ""), kind=data["kind"], params=data["fixed"], space=data["space"],
            method=data["method"], trials=figures["trials"], parallel=data["parallel"], metric=data["metric"],
            direction=data["direction"], pruning=data.get("pruning") or "", queue=data["queue"], seed=data["seed"],
            budget_seconds=round(budget * 60) if budget else None, estimate=figures, study_name=_study_name())
        engine.create(sweep)
        return Response(self._read(sweep), status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={202: SweepDoc, 409: DetailSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Stop the sweep: no new trials; its queued and running trials are cancelled."""
        sweep = self.get_object()
        if sweep.status != Sweep.Status.RUNNING:
            return Response({"detail": "This sweep has already ended; there is nothing to cancel."},
                            status=status.HTTP_409_CONFLICT)
        engine.cancel(sweep)
        sweep.refresh_from_db()
        return Response(self._read(sweep), status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=ExtendSerializer, responses={202: SweepDoc})
    @action(detail=True, methods=["post"])
    def extend(self, request, pk=None):
        """Run more trials; the sampler learns from the ones already run."""
        sweep = self.get_object()
        incoming = ExtendSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        problem = redis_problem()
        if problem:
            raise QueueUnavailable(problem)
        engine.extend(sweep, incoming.validated_data["trials"])
        sweep.refresh_from_db()
        return Response(self._read(sweep), status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=PromoteSerializer, responses={201: PromotedDoc, 400: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def promote(self, request, pk=None):
        """Train the best trials again with more epochs, or fine-tune them (on a GPU worker when one is alive)."""
        sweep = self.get_object()
        incoming = PromoteSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        try:
            jobs = engine.promote(sweep, data["top"], data.get("epochs"), data["finetune"])
        except LaunchRefused as exc:
            return Response({"detail": str(exc)}, status=exc.status)
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response({"jobs": [{"id": job.id, "queue": job.queue, "status": job.status} for job in jobs]},
                        status=status.HTTP_201_CREATED)


STALLED_AFTER = timedelta(seconds=15)


def _stalled(sweep: Sweep) -> bool:
    """Nothing of it has been queued or running for a while, though the sweep still runs. (Right after a
    trial ends its worker moves the sweep on; a page must not race it for the lease meanwhile.)"""
    trials = sweep.jobs.filter(trial_number__isnull=False)
    if trials.filter(status__in=Job.ACTIVE).exists():
        return False
    last = trials.aggregate(last=Max("finished_at"))["last"] or sweep.created_at
    return timezone.now() - last > STALLED_AFTER


def _study_name() -> str:
    return f"visionlab-sweep-{uuid.uuid4().hex}"
