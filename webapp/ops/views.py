"""Health and workers: what the stack is made of and whether it is up."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.ops import health, workers
from webapp.redis_client import redis_problem


@never_cache
def healthz(request):
    healthy, report = health.check()
    return JsonResponse(report, status=200 if healthy else 503)


@login_required
def workers_page(request):
    return render(request, "ops/workers.html", {"snapshot": workers.snapshot(request.user)})


class QueueStatusView(APIView):
    """Whether jobs can be started now: the launch forms poll this to show or hide a warning.

    Cheaper than /healthz (no worker ping), so every open page can ask every few seconds.
    """

    def get(self, request):
        problem = redis_problem()
        return Response({"ok": problem is None, "problem": problem})


class WorkersView(APIView):
    """Live workers (queues, devices, running jobs) and the queued jobs in order."""

    def get(self, request):
        return Response(workers.snapshot(request.user))
