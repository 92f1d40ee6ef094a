"""The job kinds this server can run: one registered entry each, and the lookups everything else uses.

A kind of job is one class in one module of an app's `kinds` package (as NetBox's JobRunner
classes over one Job model, or Pillow's format plugins); the app that owns what the job works on
owns its kind (ingestion in webapp/datasets/kinds/, training in webapp/experiments/kinds/). It
holds the kind's parameters and launch checks, its queue, the Celery task that runs it and the
worker function behind the task, whether it resumes, what a sweep may optimise, its verdict, what
its failure elsewhere means, and its part of the job page. The
registry is filled once Django's apps are ready (`load`, from JobsConfig.ready) by importing every
module of every installed app's `kinds` package and the modules named in the EXTRA_JOB_KINDS setting;
nothing else keeps a list of kinds.

This module imports no model, so `Job` can take its choices from it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from django.apps import apps
from django.conf import settings
from django.utils.module_loading import module_has_submodule

from jobs.queues import Queue

KINDS_PACKAGE = "kinds"  # in each app, the package whose every module registers one kind

_REGISTRY: dict[str, JobKind] = {}


@dataclass(frozen=True)
class Objective:
    """A number a sweep of a kind can optimise."""

    name: str
    label: str
    default_direction: str  # "max" | "min"
    per_epoch: bool  # recorded every epoch: a pruner can judge a trial on it


# The metrics every epoch of a training run records (jobs.reporter), which any trained kind can be swept on.
EPOCH_OBJECTIVES = (Objective("val_accuracy", "Validation accuracy", "max", True),
                    Objective("val_loss", "Validation loss", "min", True),
                    Objective("accuracy", "Training accuracy", "max", True),
                    Objective("loss", "Training loss", "min", True))


class JobKind:
    """What one kind of job is. Subclass it in a module of webapp.jobs.kinds and `register` an instance."""

    name: ClassVar[str]  # the Job.kind value, in the API and the database
    label: ClassVar[str]  # how a page names it ("Training")
    constant: ClassVar[str] = ""  # Job.Kind.<constant>; default: the name in capitals
    # The Celery task (default "jobs.<name>") and the worker function it calls with (job, reporter),
    # as a dotted path: the web process names it without importing the worker's code.
    task: ClassVar[str] = ""
    work: ClassVar[str]
    time_limit: ClassVar[int] = 24 * 3600  # seconds before the task is asked to stop (Celery's soft limit)
    grace: ClassVar[int] = 300  # seconds after that before it is killed (the hard limit)
    params: ClassVar[type]  # the serializer that checks a launch's parameters
    declaration: ClassVar = None  # its tunable parameters (webapp.experiments.params.Declaration), if any
    queue: ClassVar[Queue | None] = None  # a fixed queue, or None: gpu when a GPU worker is alive, else cpu
    public: ClassVar[bool] = True  # False: the platform starts it itself (ingestion starts with an upload)
    resumable: ClassVar[bool] = False  # it checkpoints every epoch, so Resume continues it
    objectives: ClassVar[Sequence[Objective]] = ()  # what a sweep of it may optimise; none: not sweepable
    # The sweepable parameters the New sweep form shows at once (in the declaration's order); the rest sit
    # under "More settings".
    sweep_main: ClassVar[tuple[str, ...]] = ()
    # The job page (templates/experiments/job.html): the partial under the title, the sections above
    # the Run and Parameters cards and those below them, the result view job.js draws, extra scripts.
    heading_template: ClassVar[str] = ""  # beside the status badge
    title_template: ClassVar[str] = ""
    sections: ClassVar[Sequence[str]] = ()
    after_sections: ClassVar[Sequence[str]] = ("jobs/sections/result.html",)
    view: ClassVar[str] = "result"
    scripts: ClassVar[Sequence[str]] = ()

    @property
    def task_name(self) -> str:
        return self.task or f"jobs.{self.name}"

    def verdict(self, result: dict, metrics: Sequence[dict]) -> dict | None:
        """The plain verdict of a finished run (webapp.experiments.verdicts), or None for kinds without one."""
        return None

    def lost(self, job, error: str) -> None:
        """What else fails with a job whose worker died before it could say so (webapp.jobs.workers)."""

    def page_context(self, job, user) -> dict:
        """What its job page sections need beyond the job (say, the model an export came from)."""
        return {}

    def objective(self, metric: str) -> Objective:
        return {o.name: o for o in self.objectives}[metric]

    def __repr__(self) -> str:
        return f"<JobKind {self.name}>"


class TrainingKind(JobKind):
    """A kind that trains a model epoch by epoch: it checkpoints (so it resumes), a sweep may optimise what
    every epoch records and its final score, and its page shows curves and the model's summary."""

    time_limit = 48 * 3600
    resumable = True
    final_objective: ClassVar[Objective]  # the run's score once it ends (test accuracy, BLEU-4)
    after_sections = ("jobs/sections/model_summary.html",)
    scripts = ("vendor/chartjs/chart.umd.min.js",)

    @property
    def objectives(self) -> Sequence[Objective]:
        return (*EPOCH_OBJECTIVES, self.final_objective)


def register(kind: type[JobKind]) -> type[JobKind]:
    """Add a kind (a class decorator); registering the same name twice keeps the newest (a reloaded module)."""
    _REGISTRY[kind.name] = kind()
    return kind


def unregister(name: str) -> None:
    """Drop a kind (tests that register one of their own)."""
    _REGISTRY.pop(name, None)


def get(name: str) -> JobKind:
    """The registered kind `name`; KeyError for a kind this server does not know."""
    return _REGISTRY[name]


def all_kinds() -> list[JobKind]:
    return list(_REGISTRY.values())


def choices() -> list[tuple[str, str]]:
    """(name, label) of every kind: Job.kind's choices (a callable, so a new kind needs no migration)."""
    return [(kind.name, kind.label) for kind in _REGISTRY.values()]


def param_label(kind: str, name: str) -> str:
    """How a page names parameter `name` of `kind` ("Learning rate"), or the name itself when it is not declared."""
    declaration = _REGISTRY[kind].declaration if kind in _REGISTRY else None
    return declaration[name].label if declaration is not None and name in declaration else name


def sweepable() -> list[JobKind]:
    return [kind for kind in _REGISTRY.values() if kind.objectives]


class DeclarationsView(Mapping):
    """{kind name: its parameter declaration} for the kinds that declare parameters, read from the registry."""

    def _declared(self) -> dict:
        return {kind.name: kind.declaration for kind in _REGISTRY.values() if kind.declaration is not None}

    def __getitem__(self, name: str):
        return self._declared()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._declared())

    def __len__(self) -> int:
        return len(self._declared())


class KindNames:
    """`Job.Kind`: the registered kinds by constant (Job.Kind.TRAIN == "train"), their `values` and
    `choices`, and `Job.Kind(name)` for the entry itself; read from the registry, not a second list."""

    def __getattr__(self, constant: str) -> str:
        for kind in _REGISTRY.values():
            if (kind.constant or kind.name.upper()) == constant:
                return kind.name
        raise AttributeError(f"No job kind is registered as {constant}.")

    def __call__(self, name: str) -> JobKind:
        return get(name)

    @property
    def values(self) -> list[str]:
        return list(_REGISTRY)

    @property
    def choices(self) -> list[tuple[str, str]]:
        return choices()


def load() -> None:
    """Import every module of each installed app's `kinds` package, and those named in settings.EXTRA_JOB_KINDS:
    each registers its kind. Called once the apps are ready, since kinds validate against the models."""
    names = []
    for app in apps.get_app_configs():
        if module_has_submodule(app.module, KINDS_PACKAGE):
            # By name: the kinds import this module, not the reverse.
            package = importlib.import_module(f"{app.name}.{KINDS_PACKAGE}")
            names += [f"{package.__name__}.{info.name}" for info in pkgutil.iter_modules(package.__path__)]
    for name in [*names, *getattr(settings, "EXTRA_JOB_KINDS", ())]:
        importlib.import_module(name)
