"""GET /api/jobs/: which of a person's runs, in which order, and what one row of the list says.

A list of ten thousand runs must not read their epochs: it filters and sorts on the summary
columns a job gets when it ends (webapp.experiments.summary), reads one page of Job rows, and
answers each row without its per-epoch metrics, its record, or the bulky parts of its result
(the confusion matrix, per-class scores, mistakes, the model summary). `GET /api/jobs/{id}/`
still answers all of it.

Query parameters, all optional, combined with AND (an empty value means "any"):
  status     queued | running | succeeded | failed | cancelled | pruned, or active (queued or running)
  kind       a job kind (train, extract_features, train_captioner, system_check, ingest_dataset)
  dataset    a dataset's id
  architecture  params.architecture, exactly (lenet5, vgg16_transfer, merge, ...)
  project    a project's id or name
  tag        a tag's name
  sweep      a sweep's id: its trials and the runs it promoted
  q          words, each found in the note, the dataset's name, the architecture, a tag, the
             project's name, the kind's label or the run's id (#12 or 12)
  ordering   created_at, test_accuracy, best_val_accuracy, best_val_loss, bleu4, duration or id,
             with "-" for descending; runs without the number come last either way
A value that cannot be a filter (an unknown status, a dataset id that is not a number, an
ordering not in the list) answers 400 with a sentence that says what would be.
"""

from __future__ import annotations

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, QuerySet
from rest_framework import serializers
from rest_framework.exceptions import APIException

from webapp.datasets.choices import named_datasets
from webapp.datasets.models import Dataset
from webapp.experiments.models import Project, Tag
from webapp.experiments.serializers import JobSerializer
from webapp.jobs.models import Job

# What `ordering` sorts on: the summary columns, the run's duration, its age and its id.
ORDERINGS = ("created_at", "test_accuracy", "best_val_accuracy", "best_val_loss", "bleu4", "duration", "id")
DEFAULT_ORDERING = "-created_at"
STATUSES = (*Job.Status.values, "active")
MAX_ID = 2**63 - 1  # past it, a number cannot be a row id on any database
MAX_WORDS = 8  # of `q`: each word is one more OR of subqueries


def _choices_sentence(name: str, choices) -> str:
    listed = ", ".join(choices[:-1]) + " or " + choices[-1]
    return f'{name} must be one of {listed}; "{{input}}" is not one.'


def _id_filter(name: str, help_text: str) -> serializers.IntegerField:
    """A filter by the id of a row `name` (a dataset, a sweep): a whole number from 1 that any database's ids
    hold, and one sentence for whatever else is sent."""
    return serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_ID, help_text=help_text,
        error_messages={key: f"{name} must be a {name}'s id, a whole number from 1."
                        for key in ("invalid", "min_value", "max_value", "max_string_length")})


class JobListQuery(serializers.Serializer):
    """The query parameters of GET /api/jobs/ (the paginator adds `page` and `page_size`)."""

    status = serializers.ChoiceField(
        choices=STATUSES, required=False, allow_blank=True,
        help_text="queued, running, succeeded, failed, cancelled, pruned, or active (queued or running).",
        error_messages={"invalid_choice": _choices_sentence("status", STATUSES)})
    kind = serializers.ChoiceField(
        choices=Job.Kind.values, required=False, allow_blank=True, help_text="Only jobs of this kind.",
        error_messages={"invalid_choice": _choices_sentence("kind", Job.Kind.values)})
    dataset = _id_filter("dataset", "Only jobs that read this dataset (its id).")
    architecture = serializers.CharField(
        required=False, allow_blank=True, max_length=100,
        help_text="Only runs of this architecture (params.architecture), exactly.",
        error_messages={"max_length": "architecture is at most 100 characters long."})
    project = serializers.CharField(
        required=False, allow_blank=True, max_length=100, help_text="Only runs in this project: its id or its name.",
        error_messages={"max_length": "project is a project's id or name, at most 100 characters long."})
    tag = serializers.CharField(
        required=False, allow_blank=True, max_length=50, help_text="Only runs with this tag (its name).",
        error_messages={"max_length": "tag is a tag's name, at most 50 characters long."})
    sweep = _id_filter("sweep", "Only the trials (and promoted runs) of this sweep.")
    q = serializers.CharField(
        required=False, allow_blank=True, max_length=200,
        help_text="Words to find, each in the note, dataset name, architecture, a tag, the project, the kind "
                  "or the id.",
        error_messages={"max_length": "Search for at most 200 characters."})
    ordering = serializers.ChoiceField(
        choices=[*ORDERINGS, *(f"-{name}" for name in ORDERINGS)], required=False, allow_blank=True,
        help_text="The order of the rows: a field, or -field for descending (default -created_at). Runs "
                  "without that number come last either way.",
        error_messages={"invalid_choice": _choices_sentence(
            "ordering", [*ORDERINGS[:-1], f"{ORDERINGS[-1]} (with - in front for descending)"])})


class BadListQuery(APIException):
    status_code = 400
    default_code = "bad_filter"


def list_query(params) -> dict:
    """The validated, non-empty query parameters of a list request; BadListQuery with one sentence."""
    for name in JobListQuery().fields:
        if "\0" in params.get(name, ""):
            raise BadListQuery(f"{name} cannot hold a NUL character.")
    query = JobListQuery(data=params)
    if not query.is_valid():
        field, messages = next(iter(query.errors.items()))
        raise BadListQuery(str(messages[0]))
    return {key: value for key, value in query.validated_data.items() if value not in ("", None)}


def _project_ids(owner, wanted: str) -> list[int]:
    """The owner's project `wanted` names: by id when it is one of theirs, else by name."""
    projects = Project.objects.filter(owner=owner)
    if wanted.isdigit() and len(wanted) <= 18:
        found = list(projects.filter(id=int(wanted)).values_list("id", flat=True))
        if found:
            return found
    return list(projects.filter(name=wanted).values_list("id", flat=True))


def _with_tag(owner, condition: Q) -> Q:
    """Jobs carrying one of the owner's tags that meet `condition` (a subquery: no duplicate rows)."""
    tagged = Job.tags.through.objects.filter(tag__in=Tag.objects.filter(condition, owner=owner))
    return Q(id__in=tagged.values("job_id"))


def _word(owner, word: str) -> Q:
    """Jobs where `word` appears somewhere a person would look for it."""
    found = (Q(note__icontains=word) | Q(params__dataset_name__icontains=word)
             | Q(params__architecture__icontains=word)
             | Q(project__in=Project.objects.filter(owner=owner, name__icontains=word))
             | _with_tag(owner, Q(name__icontains=word)))
    lowered = word.lower()
    kinds = [value for value, label in Job.Kind.choices if lowered in label.lower() or lowered in value]
    if kinds:
        found |= Q(kind__in=kinds)
    number = word.removeprefix("#")
    if number.isdigit() and len(number) <= 18:
        found |= Q(id=int(number))
    return found


def filter_jobs(jobs: QuerySet, owner, query: dict) -> QuerySet:
    """`jobs` narrowed by the validated `query` (see the module docstring)."""
    if status := query.get("status"):
        jobs = jobs.filter(status__in=Job.ACTIVE) if status == "active" else jobs.filter(status=status)
    if kind := query.get("kind"):
        jobs = jobs.filter(kind=kind)
    if dataset := query.get("dataset"):
        jobs = jobs.filter(dataset_id=dataset)
    if architecture := query.get("architecture"):
        jobs = jobs.filter(params__architecture=architecture)
    if project := query.get("project"):
        jobs = jobs.filter(project_id__in=_project_ids(owner, project))
    if tag := query.get("tag"):
        jobs = jobs.filter(_with_tag(owner, Q(name=tag)))
    if sweep := query.get("sweep"):
        jobs = jobs.filter(sweep_id=sweep)
    for word in query.get("q", "").split()[:MAX_WORDS]:
        jobs = jobs.filter(_word(owner, word))
    return jobs


def order_jobs(jobs: QuerySet, ordering: str | None) -> QuerySet:
    """`jobs` in `ordering` (a name of ORDERINGS, "-" first for descending), runs without the number
    last, and the id as the tie-break so that pages never overlap."""
    ordering = ordering or DEFAULT_ORDERING
    descending, name = ordering.startswith("-"), ordering.lstrip("-")
    if name in ("created_at", "id"):  # never null: plain, so the (owner, -created_at) index serves it
        return jobs.order_by(ordering, "-id" if descending else "id")
    if name == "duration":
        jobs = jobs.annotate(duration=ExpressionWrapper(F("finished_at") - F("started_at"),
                                                        output_field=DurationField()))
    key = F(name).desc(nulls_last=True) if descending else F(name).asc(nulls_last=True)
    return jobs.order_by(key, "-id" if descending else "id")


def jobs_for(request) -> QuerySet:
    """The ids of the requesting user's jobs that the request's query asks for, in its order: what a
    page is cut from. Only ids, so that the database sorts narrow rows, not every run's result."""
    query = list_query(request.query_params)
    jobs = filter_jobs(Job.objects.filter(owner=request.user), request.user, query)
    return order_jobs(jobs, query.get("ordering")).values_list("id", flat=True)


def rows(ids: list[int]) -> list[Job]:
    """The jobs `ids` (one page), in that order, with what a row shows and nothing it does not."""
    jobs = (Job.objects.filter(id__in=ids).select_related("trained_model", "project")
            .prefetch_related("tags").defer("record"))
    by_id = {job.id: job for job in jobs}
    return [by_id[i] for i in ids if i in by_id]


# The jobs page's sort menu: the orderings a person asks for, in words.
SORTS = (
    ("-created_at", "Newest first"), ("created_at", "Oldest first"),
    ("-test_accuracy", "Test accuracy, best first"), ("-best_val_accuracy", "Validation accuracy, best first"),
    ("best_val_loss", "Validation loss, lowest first"), ("-bleu4", "BLEU-4, best first"),
    ("-duration", "Longest first"), ("duration", "Shortest first"),
)
PAGE_SIZES = (25, 50, 100, 200)


def filter_options(owner, params) -> dict:
    """The jobs page's filter menus, from the owner's own data, each option marked `selected` as the
    query string `params` asks (so a bookmarked view opens as it was)."""
    try:
        query = list_query(params)
    except BadListQuery:
        query = {}  # the page shows the API's sentence; the menus start from "any"
    wanted_project = str(query.get("project", ""))
    chosen_project = _project_ids(owner, wanted_project)[:1] if wanted_project else []

    def menu(pairs, name: str, chosen: str | None = None) -> list[dict]:
        chosen = str(query.get(name, "")) if chosen is None else chosen
        options = [{"value": str(value), "label": label, "selected": str(value) == chosen} for value, label in pairs]
        if chosen and not any(option["selected"] for option in options):  # asked for, though not in the data
            options.append({"value": chosen, "label": chosen, "selected": True})
        return options

    jobs = Job.objects.filter(owner=owner)
    architectures = sorted({name for name in jobs.values_list("params__architecture", flat=True).distinct()
                            if isinstance(name, str) and name})
    projects = Project.objects.filter(owner=owner).annotate(runs=Count("jobs")).order_by("name")
    return {
        # (query parameter, label, what "any" reads, options), in the order the page shows them
        "menus": [
            ("project", "Project", "All projects", menu([(p.id, f"{p.name} ({p.runs})") for p in projects], "project",
                                                        str(chosen_project[0]) if chosen_project else wanted_project)),
            ("kind", "Kind", "All kinds", menu(Job.Kind.choices, "kind")),
            ("status", "Status", "Any status", menu([("active", "Active (queued or running)"), *Job.Status.choices],
                                                    "status")),
            ("dataset", "Dataset", "All datasets", menu(
                [(d.id, d.choice_name) for d in named_datasets(Dataset.objects.filter(owner=owner).order_by("name"))],
                "dataset")),
            ("architecture", "Architecture", "All architectures",
             menu([(name, name) for name in architectures], "architecture")),
            ("tag", "Tag", "Any tag", menu([(name, name) for name in Tag.objects.filter(owner=owner)
                                             .values_list("name", flat=True)], "tag")),
        ],
        "ordering": menu(SORTS, "ordering", query.get("ordering") or DEFAULT_ORDERING),
        "page_size": menu([(size, f"{size} a page") for size in PAGE_SIZES], "page_size",
                          params.get("page_size") if params.get("page_size") in {str(n) for n in PAGE_SIZES} else "50"),
        "q": query.get("q", ""),
    }


def _plain(value) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


class JobRowSerializer(JobSerializer):
    """A row of the jobs list: a job as GET /api/jobs/{id}/ shows it, without its per-epoch `metrics`
    and `record`, and with only the plain numbers and words of its `result` (test_accuracy,
    test_loss, bleu1..bleu4, ...). Its summary columns and `curve` are the list's numbers."""

    class Meta(JobSerializer.Meta):
        fields = [name for name in JobSerializer.Meta.fields
                  if name not in ("metrics", "record", *JobSerializer.DETAIL_ONLY)]
        read_only_fields = fields

    def to_representation(self, job: Job) -> dict:
        data = super().to_representation(job)
        if isinstance(data.get("result"), dict):
            data["result"] = {key: value for key, value in data["result"].items() if _plain(value)}
        return data
