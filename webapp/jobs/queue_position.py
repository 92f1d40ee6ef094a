"""Where a queued job stands: its place in its queue and what runs before it.

The order is the database's, not Redis's: the active jobs (running or queued) of the same queue,
oldest first, ahead of it. A worker takes them in about that order, so "3rd in the cpu queue" is
what a person waiting needs, without inspecting Redis lists. Another user's jobs ahead are
counted, never named: their ids, kinds and datasets stay theirs.
"""

from __future__ import annotations

from django.db.models import Q

from webapp.jobs.models import Job

MAX_NAMED = 20  # the viewer's own jobs ahead that are listed one by one; the rest are counted


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def queue_position(job: Job) -> dict | None:
    """{"queue", "position", "ahead": [...], "text"} for a queued job, None for any other.

    `ahead` lists, oldest first, the viewer's own jobs ({"id", "kind", "status", "yours": true}) and
    another user's as {"status", "yours": false} only.
    """
    if job.status != Job.Status.QUEUED:
        return None
    before = Q(created_at__lt=job.created_at) | Q(created_at=job.created_at, id__lt=job.id)
    ahead = list(Job.objects.filter(before, queue=job.queue, status__in=Job.ACTIVE)
                 .order_by("created_at", "id").values("id", "kind", "status", "owner_id"))
    entries = [{"id": row["id"], "kind": row["kind"], "status": row["status"], "yours": True}
               if row["owner_id"] == job.owner_id else {"status": row["status"], "yours": False}
               for row in ahead]
    position = len(entries) + 1
    return {"queue": job.queue, "position": position, "ahead": entries, "text": _sentence(job.queue, position, entries)}


def _sentence(queue: str, position: int, ahead: list[dict]) -> str:
    """ "3rd in the cpu queue, after job 41 (running, yours) and 2 jobs of other users." """
    if not ahead:
        return f"Next in the {queue} queue: it starts as soon as a worker is free."
    mine = [entry for entry in ahead if entry["yours"]]
    others = len(ahead) - len(mine)
    parts = [f"job {entry['id']} ({entry['status']}, yours)" for entry in mine[:MAX_NAMED]]
    if len(mine) > MAX_NAMED:
        parts.append(f"{len(mine) - MAX_NAMED} more of yours")
    if others:
        running = sum(1 for entry in ahead if not entry["yours"] and entry["status"] == Job.Status.RUNNING)
        what = f"{others} job{'s' if others != 1 else ''} of other users"
        parts.append(what + (f" ({running} running)" if running else ""))
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{_ordinal(position)} in the {queue} queue, after {listed}."
