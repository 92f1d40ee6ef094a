"""Pages for jobs: the list (with the launch form) and one job, both updating live."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from webapp.experiments.kinds import QueueUnavailable, cancel_job, launch_job
from webapp.experiments.models import Job
from webapp.redis_client import redis_problem


@login_required
@require_http_methods(["GET", "POST"])
def jobs_page(request):
    if request.method == "POST":
        try:
            job = launch_job(request.user, Job.Kind.SYSTEM_CHECK, {"seconds_per_device": 2.0},
                             request.POST.get("queue") or None)
        except QueueUnavailable as exc:
            messages.error(request, str(exc))
            return redirect("jobs")
        return redirect("job", job_id=job.id)
    jobs = Job.objects.filter(owner=request.user)[:50]
    return render(request, "experiments/jobs.html", {
        "jobs": jobs,
        "queue_problem": redis_problem(),
    })


@login_required
def job_page(request, job_id: int):
    job = get_object_or_404(Job, id=job_id, owner=request.user)
    return render(request, "experiments/job.html", {"job": job})


@login_required
@require_POST
def cancel_job_page(request, job_id: int):
    job = get_object_or_404(Job, id=job_id, owner=request.user)
    if not cancel_job(job.id):
        messages.info(request, "This job had already ended.")
    return redirect("job", job_id=job.id)
