"""A toy job kind, the whole of it in one module plus its plain work function, for tests/test_job_kinds.py.

It is what docs/architecture.md's "How to add a job kind" walks through: a declaration of its
parameters, the serializer made from it, the worker function, and one registered JobKind. Nothing
else in the project names it; a worker loads it through EXTRA_JOB_KINDS.
"""

from __future__ import annotations

from webapp.experiments.params import Declaration, Param
from webapp.jobs.registry import JobKind, register

ADD_UP = Declaration((
    Param("count", "int", 5, "Count", "How many whole numbers to add up, from 1.", min=1, max=1000),
))


class AddUpParams(ADD_UP.serializer_base("AddUpFields")):
    pass


def add_up(job, reporter) -> dict:
    """The work: add 1..count, reporting progress after each number as a real job does every batch."""
    count, total = job.params["count"], 0
    for number in range(1, count + 1):
        total += number
        reporter.progress(number / count, f"Added {number} of {count}")
    return {"total": total}


@register
class AddUp(JobKind):
    name = "toy_add_up"
    label = "Toy sum"
    work = "tests.toy_kind.add_up"
    time_limit = 60
    grace = 10
    declaration = ADD_UP
    params = AddUpParams
    queue = "toy"  # served only by the test's own worker that loaded this module
