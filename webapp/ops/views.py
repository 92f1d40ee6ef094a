"""Health and workers: what the stack is made of and whether it is up."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.jobs import workers
from webapp.ops import health
from webapp.redis_client import redis_problem


@never_cache
def healthz(request):
    healthy, report = health.check()
    return JsonResponse(report, status=200 if healthy else 503)


@login_required
def workers_page(request):
    return render(request, "ops/workers.html", {"snapshot": workers.snapshot(request.user)})


class QueueStatusSerializer(serializers.Serializer):
    ok = serializers.BooleanField(help_text="Whether jobs can be started now.")
    problem = serializers.CharField(allow_null=True, help_text="What is wrong with Redis, when it is.")


class WorkerJobSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True, help_text="Null for another user's job.")
    kind = serializers.CharField()
    mine = serializers.BooleanField()
    queue = serializers.CharField()
    progress = serializers.FloatField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)


class WorkerSerializer(serializers.Serializer):
    """A live worker's heartbeat record (more fields may appear), and the jobs it runs."""

    hostname = serializers.CharField(help_text='The Celery host name for staff; "Worker 1", "Worker 2"... for others.')
    queues = serializers.ListField(child=serializers.CharField())
    pid = serializers.IntegerField(allow_null=True, help_text="The process id, for staff only.")
    devices = serializers.JSONField(help_text="The machine: CPU, GPUs and their memory.")
    running = WorkerJobSerializer(many=True)


class WorkersSnapshotSerializer(serializers.Serializer):
    redis_error = serializers.CharField(allow_null=True)
    workers = WorkerSerializer(many=True)
    queued = WorkerJobSerializer(many=True, help_text="Waiting jobs, in the order they will run.")
    running_elsewhere = WorkerJobSerializer(many=True, help_text="Running on a worker that stopped reporting.")


class QueueStatusView(APIView):
    """Whether jobs can be started now: the launch forms poll this to show or hide a warning.

    Cheaper than /healthz (no worker ping), so every open page can ask every few seconds.
    """

    @extend_schema(responses={200: QueueStatusSerializer})
    def get(self, request):
        problem = redis_problem()
        return Response({"ok": problem is None, "problem": problem})


class WorkersView(APIView):
    """Live workers (queues, devices, running jobs) and the queued jobs in order."""

    @extend_schema(responses={200: WorkersSnapshotSerializer})
    def get(self, request):
        return Response(workers.snapshot(request.user))
