"""System check: measure what each device of a worker can do (a matrix multiply per device)."""

from __future__ import annotations

from jobs.queues import Queue
from webapp.experiments import params
from webapp.jobs.registry import JobKind, register


class SystemCheckParams(params.SYSTEM_CHECK.serializer_base("SystemCheckFields")):
    pass


@register
class SystemCheck(JobKind):
    name = "system_check"
    label = "System check"
    work = "jobs.system_check.system_check"
    time_limit = 300
    grace = 30
    declaration = params.SYSTEM_CHECK
    params = SystemCheckParams
    queue = Queue.CPU
    view = "system_check"
