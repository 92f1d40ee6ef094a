"""Comparing 2 to 10 runs side by side (workflow 6): what `GET /api/compare/?jobs=1,2,3` answers and
the compare page shows.

- **Parameters**: every parameter of every run, one value per run, and which of them differ.
- **Curves**: every recorded metric of every run, against the epoch and against wall time, with
  each run's best epoch; long series are thinned to `MAX_POINTS` (first, last and best epochs
  kept) unless the full series is asked for.
- **Summary**: the headline numbers of each run (test accuracy, best validation accuracy and
  loss, BLEU-4, best epoch, epochs, duration, device, dataset, seed, code version).
- **Image by image**: classifiers scored on the same test images (the same evaluated paths of
  the same dataset content) are compared per image: the images only A got right, those only B
  got right, and McNemar's exact test on those two counts, which says how likely a difference
  that large is by chance. A pair that cannot be compared says why.
- **Captions**: BLEU side by side and the captions each caption model wrote for the same photos.
- **Repeats**: a run that repeats another compared run (`record.rerun_of`) shows how far it
  landed from the original.

Every classifier job leaves the predicted class of each evaluated image in a small gzipped file
beside its model (`jobs.ml.predictions`, the format both the training job and this page use), with
paths relative to the dataset's images folder; its result keeps only a pointer and a count.

Reads are kept small for ten runs of many epochs: one query for the jobs, one for all their
epochs, one for the thumbnails shown, and the prediction files of classifiers only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

from django.conf import settings
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from jobs.ml.predictions import PREDICTIONS_FILE, read_predictions
from webapp.datasets.models import DatasetItem
from webapp.experiments.summary import downsample, summary_fields
from webapp.jobs.models import Job, JobMetric
from webapp.jobs.public import relative_paths
from webapp.jobs.registry import param_label

MIN_RUNS, MAX_RUNS = 2, 10
MAX_POINTS = 200  # per run and metric, unless the full series is asked for
THUMB_SIDE = 96  # px: ingestion's thumbnails are no larger; a smaller image is shown as it is
EXAMPLES = 16  # images shown per side of a pair (those only A got right, those only B got right)
METRIC_ORDER = ("loss", "accuracy", "val_loss", "val_accuracy")
# Params a person does not choose, or that another row already shows.
HIDDEN_PARAMS = {"dataset", "resume", "backbone_label"}
PARAM_ORDER = ("kind", "architecture", "dataset_name", "dataset_hash", "backbone", "weights", "mode", "epochs",
               "batch_size", "optimizer", "learning_rate", "image_size", "color_mode", "augment_flip",
               "augment_rotation", "augment_zoom", "early_stopping", "seed")
REPEAT_METRICS = (("test_accuracy", "test accuracy"), ("bleu4", "BLEU-4"), ("best_val_loss", "best validation loss"),
                  ("best_val_accuracy", "best validation accuracy"))
JOB_FIELDS = ("id", "owner", "kind", "status", "params", "result", "record", "device", "error", "note",
              "created_at", "started_at", "finished_at", "dataset_id", "project__name", "test_accuracy",
              "best_val_accuracy", "best_val_loss", "bleu4", "best_epoch", "epochs_run")


class CompareRefused(ValueError):
    """A request that cannot be answered, as one sentence for a person (400)."""


class RunsNotFound(LookupError):
    """Ids that are not runs of the requesting user (404, as for an id that does not exist)."""


# --- the request ----------------------------------------------------------------------------------

def parse_ids(raw) -> list[int]:
    """The distinct job ids of `?jobs=1,2,3`, in the order given, or CompareRefused with a sentence."""
    text = (raw or "").strip() if isinstance(raw, str) else ""
    if not text:
        raise CompareRefused(f"Name the runs to compare as ?jobs=1,2,3: {MIN_RUNS} to {MAX_RUNS} job ids "
                             "separated by commas.")
    ids: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not (part.isascii() and part.isdigit()) or len(part) > 18 or int(part) == 0:
            raise CompareRefused(f"'{part[:40]}' is not a job id: give {MIN_RUNS} to {MAX_RUNS} job ids "
                                 "separated by commas, such as ?jobs=1,2,3.")
        if int(part) not in ids:
            ids.append(int(part))
    if len(ids) < MIN_RUNS:
        raise CompareRefused(f"Choose at least {MIN_RUNS} different runs to compare.")
    if len(ids) > MAX_RUNS:
        raise CompareRefused(f"At most {MAX_RUNS} runs can be compared at once; this asked for {len(ids)}.")
    return ids


def truthy(raw) -> bool:
    return isinstance(raw, str) and raw.strip().lower() in ("1", "true", "yes", "on")


# --- McNemar's exact test -------------------------------------------------------------------------

def mcnemar_exact(b: int, c: int) -> float:
    """The two-sided p-value of McNemar's exact test on the discordant counts `b` and `c` (images only
    one of two classifiers got right): p = min(1, 2 P(X <= min(b, c))) for X ~ Binomial(b + c, 1/2)."""
    if isinstance(b, bool) or isinstance(c, bool) or not isinstance(b, int) or not isinstance(c, int) \
            or b < 0 or c < 0:
        raise ValueError("McNemar's test needs two counts of images, whole numbers from 0.")
    n, k = b + c, min(b, c)
    if n == 0:
        return 1.0
    if n <= 2000:  # exact: whole numbers, one correctly rounded division
        return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in range(k + 1)]
    top = max(logs)
    log_tail = top + math.log(sum(math.exp(x - top) for x in logs)) - n * math.log(2)
    return min(1.0, 2 * math.exp(log_tail))


def format_p(p: float) -> str:
    """A p-value as a person reads it: "0.013", "0.5", "1", "< 0.001"."""
    if p < 0.001:
        return "< 0.001"
    text = f"{p:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def _images(n: int) -> str:
    return f"{n:,} image" + ("" if n == 1 else "s")


def agreement_sentence(a: str, b: str, a_only: int, b_only: int, p: float) -> str:
    """One plain sentence on two classifiers' disagreements and how likely they are by chance."""
    if a_only == b_only == 0:
        return f"{a} and {b} got exactly the same images right and wrong, so neither is better here."
    if a_only == b_only:
        head = f"{a} and {b} each get {_images(a_only)} right that the other gets wrong"
    else:
        (better, worse), (wins, losses) = ((b, a), (b_only, a_only)) if b_only > a_only else ((a, b), (a_only, b_only))
        head = f"{better} is better than {worse} on {_images(wins)} and worse on {losses:,}"
    verdict = ("unlikely to be luck" if p < 0.05 else "could well be luck")
    shown = format_p(p)
    p_text = f"p {shown}" if shown.startswith("<") else f"p = {shown}"
    return f"{head}; a difference this large by chance: {p_text} ({verdict})."


# --- the per-image predictions file ----------------------------------------------------------------

def predictions_path(result) -> Path | None:
    """Where the predictions file of a classifier job's `result` lies (beside its model), if it has one."""
    if not isinstance(result, dict):
        return None
    pointer, model_id = result.get("predictions"), result.get("model_id")
    if not isinstance(pointer, dict) or pointer.get("file") != PREDICTIONS_FILE:
        return None
    if isinstance(model_id, bool) or not isinstance(model_id, int) or model_id <= 0:
        return None
    return Path(settings.DATA_DIR) / "models" / str(model_id) / PREDICTIONS_FILE


# --- small helpers -------------------------------------------------------------------------------

def _number(value) -> float | None:
    """A finite float, or None (JSON has no NaN; a diverged run's loss is one)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def _iso(moment) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _public(value, staff: bool):
    """`value` with DATA_DIR's path taken out of every string in it, for non-staff readers."""
    if staff:
        return value
    if isinstance(value, str):
        return relative_paths(value)
    if isinstance(value, list):
        return [_public(v, staff) for v in value]
    if isinstance(value, dict):
        return {k: _public(v, staff) for k, v in value.items()}
    return value


def _json_value(value):
    """A parameter value as JSON can carry it (non-finite floats become None)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return value


def _label(job: Job) -> str:
    return f"#{job.id}"


def _dataset_hash(job: Job) -> str | None:
    return (job.record or {}).get("dataset_hash") or (job.params or {}).get("dataset_hash") or None


def _thumbs(wanted: set[tuple[int, str]], by_id: set[int]) -> dict:
    """{(dataset id, path) or item id: (dataset id, item id, thumbnail)} for the images shown, in one query."""

    if not wanted and not by_id:
        return {}
    query = Q(id__in=sorted(by_id)) if by_id else Q()
    datasets: dict[int, set[str]] = {}
    for dataset_id, path in wanted:
        datasets.setdefault(dataset_id, set()).add(path)
    for dataset_id, paths in datasets.items():
        query |= Q(dataset_id=dataset_id, path__in=sorted(paths))
    found = {}
    for item_id, dataset_id, path, thumbnail, width, height in DatasetItem.objects.filter(query).values_list(
            "id", "dataset_id", "path", "thumbnail", "width", "height"):
        found[(dataset_id, path)] = found[item_id] = (dataset_id, item_id, thumbnail, max(width, height))
    return found


def _picture(found: tuple | None) -> dict:
    """The item, its thumbnail and its image: an image smaller than a thumbnail (8x8 digits) is its
    own thumbnail, drawn crisp by the page instead of a blurred enlargement."""
    if not found:
        return {"item": None, "thumb": None, "image": None}
    dataset_id, item_id, thumbnail, side = found
    image = reverse("dataset-image", args=[dataset_id, item_id])
    small = side <= THUMB_SIDE or not thumbnail
    return {"item": item_id, "thumb": image if small else reverse("dataset-thumb", args=[dataset_id, thumbnail]),
            "image": image}


# --- the sections ----------------------------------------------------------------------------------

def _summary(job: Job, metrics: list[dict]) -> dict:
    """The run's headline numbers: the stored summary, or computed now for a run that has none yet."""
    stored = {name: getattr(job, name) for name in ("test_accuracy", "best_val_accuracy", "best_val_loss", "bleu4",
                                                    "best_epoch", "epochs_run")}
    if job.is_active or (stored["epochs_run"] is None and metrics):
        fresh = summary_fields(metrics, job.result)
        stored = {name: fresh[name] for name in stored}
    return stored


def _job_entry(job: Job, metrics: list[dict], staff: bool) -> dict:
    params, record = job.params or {}, job.record or {}
    result = job.result if isinstance(job.result, dict) else {}
    summary = _summary(job, metrics)
    pointer = result.get("predictions") if isinstance(result.get("predictions"), dict) else {}
    count = pointer.get("count")
    model_id = result.get("model_id")
    return {
        "id": job.id, "label": _label(job), "kind": job.kind, "kind_label": job.get_kind_display(),
        "status": job.status, "architecture": _text(params.get("architecture")),
        "dataset": job.dataset_id, "dataset_name": _text(params.get("dataset_name")),
        "dataset_hash": _text(_dataset_hash(job)),
        "project": getattr(job.project, "name", None) if job.project_id else None,
        "tags": sorted(tag.name for tag in job.tags.all()), "note": job.note,
        "created_at": _iso(job.created_at), "started_at": _iso(job.started_at), "finished_at": _iso(job.finished_at),
        "duration_seconds": _number(job.duration_seconds),
        "device": job.device or _text(record.get("device")) or None,
        "seed": record.get("seed", params.get("seed")), "code": _text(record.get("code")),
        "rerun_of": record.get("rerun_of") if isinstance(record.get("rerun_of"), int) else None,
        "test_accuracy": _number(summary["test_accuracy"]), "test_loss": _number(result.get("test_loss")),
        "best_val_accuracy": _number(summary["best_val_accuracy"]),
        "best_val_loss": _number(summary["best_val_loss"]), "bleu4": _number(summary["bleu4"]),
        "best_epoch": summary["best_epoch"], "epochs_run": summary["epochs_run"],
        "evaluated_on": result.get("evaluated_on") if isinstance(result.get("evaluated_on"), str) else None,
        "evaluated_images": count if isinstance(count, int) and not isinstance(count, bool) else None,
        "model": model_id if isinstance(model_id, int) and not isinstance(model_id, bool) else None,
        "error": _public(job.error, staff) or "",
    }


def _params(jobs: list[Job], staff: bool) -> tuple[dict, list[str]]:
    names = {"kind"} | {key for job in jobs for key in (job.params or {}) if key not in HIDDEN_PARAMS}
    ordered = [n for n in PARAM_ORDER if n in names] + sorted(names - set(PARAM_ORDER))
    table: dict[str, list] = {}
    for name in ordered:
        table[name] = [_public(_json_value(job.kind if name == "kind" else (job.params or {}).get(name)), staff)
                       for job in jobs]
    differing = [name for name, values in table.items()
                 if len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1]
    return table, differing


def _metrics(jobs: list[Job], rows: dict[int, list[JobMetric]], entries: dict[int, dict], full: bool) -> dict:
    present: set[str] = set()
    runs = []
    for job in jobs:
        epochs = rows.get(job.id, [])
        first = epochs[0].recorded_at if epochs else None
        origin = job.started_at if job.started_at and (first is None or job.started_at <= first) else job.created_at
        best = entries[job.id]["best_epoch"]
        series: dict[str, list] = {}
        for m in epochs:
            seconds = round(max(0.0, (m.recorded_at - origin).total_seconds()), 3) if origin and m.recorded_at else None
            for name, value in (m.values or {}).items():
                value = _number(value)
                if value is not None:
                    series.setdefault(str(name), []).append([m.epoch, value, seconds])
        downsampled = False
        if not full:
            for name, points in series.items():
                if len(points) > MAX_POINTS:
                    series[name] = downsample(points, MAX_POINTS, [best] if best else [])
                    downsampled = True
        present |= set(series)
        runs.append({"job": job.id, "best_epoch": best, "epochs": len(epochs), "downsampled": downsampled,
                     "series": series})
    names = [n for n in METRIC_ORDER if n in present] + sorted(present - set(METRIC_ORDER))
    return {"names": names, "full": full, "max_points": None if full else MAX_POINTS, "runs": runs}


def _classifier_state(job: Job) -> tuple[dict | None, str | None]:
    """(its predictions, None) or (None, why it cannot be compared image by image)."""
    label = _label(job)
    if job.status != Job.Status.SUCCEEDED:
        if job.is_active:
            return None, f"{label} has not finished yet."
        return None, f"{label} did not finish ({job.status}), so it was never scored on the test images."
    path = predictions_path(job.result)
    if path is None:
        return None, f"{label} kept no per-image predictions (it ran before VisionLab recorded them)."
    data = read_predictions(path)
    if data is None:
        return None, f"The per-image predictions of {label} are missing on the server."
    return data, None


def _where(job: Job, data: dict) -> str:
    split = data.get("evaluated_on") or "test"
    return f"{_label(job)} on {_images(len(data['rows']))} of the {'validation' if split == 'val' else split} split"


def _right_answers(classifiers: list[Job], states: dict) -> tuple[dict[tuple, list[str]], dict[int, tuple[tuple, int]]]:
    """({images key: their paths in order}, {job id: (its key, its right answers as one integer)}).

    Runs scored on the same images share one order of those images; each run's right answers are then
    one big integer, one bit per image, and a pair's counts are bit operations."""
    groups: dict[tuple, list[str]] = {}
    bits: dict[int, tuple[tuple, int]] = {}
    for job in classifiers:
        data = states[job.id][0]
        if data is None:
            continue
        key = (_dataset_hash(job), frozenset(data["rows"]))
        if key not in groups:
            groups[key] = sorted(data["rows"])
        order, rows = groups[key], data["rows"]
        right = "".join("1" if rows[p][0] == rows[p][1] else "0" for p in order)
        bits[job.id] = (key, int(right, 2) if right else 0)
    return groups, bits


def _why_not_comparable(a: Job, b: Job, states: dict, bits: dict) -> str | None:
    """Why runs `a` and `b` cannot be compared image by image, or None when they can."""
    (da, why_a), (db, why_b) = states[a.id], states[b.id]
    if why_a or why_b:
        return why_a or why_b
    ha, hb = _dataset_hash(a), _dataset_hash(b)
    if ha is None or hb is None:
        return ("The dataset content these runs read is not recorded, so they cannot be shown to have "
                "been scored on the same images.")
    if ha != hb:
        return ("These runs were trained on different datasets (or the dataset changed between them), "
                "so they were not scored on the same test images.")
    if bits[a.id][0] != bits[b.id][0]:
        return (f"These runs were scored on different images ({_where(a, da)}, {_where(b, db)}), "
                "so they cannot be compared image by image.")
    return None


def _examples(mask: int, order: list[str], da: dict, db: dict) -> list[dict]:
    """The first EXAMPLES images (in path order) of `mask`, with what each run said."""
    def name(classes, index):
        return classes[index] if 0 <= index < len(classes) else str(index)

    examples, n = [], len(order)
    while mask and len(examples) < EXAMPLES:
        top = mask.bit_length() - 1
        mask ^= 1 << top
        path = order[n - 1 - top]
        true, a_said = da["rows"][path]
        examples.append({"path": path, "true": name(da["classes"], true), "a_predicted": name(da["classes"], a_said),
                         "b_predicted": name(db["classes"], db["rows"][path][1])})
    return examples


def _pairs(jobs: list[Job]) -> tuple[list[dict], list[tuple[int, str]]]:
    """Every pair of classifier runs: compared image by image, or why not. Also the images to show."""
    classifiers = [job for job in jobs if job.kind == Job.Kind.TRAIN]
    states = {job.id: _classifier_state(job) for job in classifiers}
    groups, bits = _right_answers(classifiers, states)
    pairs, shown = [], []
    for a, b in combinations(classifiers, 2):
        pair = {"a": a.id, "b": b.id, "comparable": False, "reason": None, "images": None, "both_right": None,
                "both_wrong": None, "a_only_right": None, "b_only_right": None, "p_value": None, "sentence": None,
                "dataset": None, "examples": {"a_only_right": [], "b_only_right": []}}
        pairs.append(pair)
        pair["reason"] = _why_not_comparable(a, b, states, bits)
        if pair["reason"]:
            continue
        order = groups[bits[a.id][0]]
        n, ra, rb = len(order), bits[a.id][1], bits[b.id][1]
        a_only, b_only = ra & ~rb, rb & ~ra
        counts = {"a_only_right": a_only.bit_count(), "b_only_right": b_only.bit_count()}
        p = mcnemar_exact(counts["a_only_right"], counts["b_only_right"])
        dataset_id = a.dataset_id or b.dataset_id
        pair.update(comparable=True, images=n, both_right=(ra & rb).bit_count(), both_wrong=n - (ra | rb).bit_count(),
                    p_value=p, sentence=agreement_sentence(_label(a), _label(b), counts["a_only_right"],
                                                           counts["b_only_right"], p),
                    dataset=dataset_id, **counts)
        for side, mask in (("a_only_right", a_only), ("b_only_right", b_only)):
            pair["examples"][side] = _examples(mask, order, states[a.id][0], states[b.id][0])
            if dataset_id:
                shown += [(dataset_id, example["path"]) for example in pair["examples"][side]]
    return pairs, shown


def _captions(jobs: list[Job]) -> tuple[dict, set[int]]:
    captioners = [job for job in jobs if job.kind == Job.Kind.TRAIN_CAPTIONER]
    runs, galleries = [], {}
    for job in captioners:
        result = job.result if isinstance(job.result, dict) else {}
        bleu = result.get("bleu") if isinstance(result.get("bleu"), dict) else {}

        def scores(decoding: str, bleu: dict = bleu) -> dict | None:
            found = bleu.get(decoding)
            if not isinstance(found, dict):
                return None
            return {k: _number(found.get(k)) for k in ("bleu1", "bleu2", "bleu3", "bleu4")}

        greedy = scores("greedy") or {k: _number(result.get(k)) for k in ("bleu1", "bleu2", "bleu3", "bleu4")}
        beam_width = result.get("beam_width")
        runs.append({"job": job.id, "greedy": greedy, "beam": scores("beam"), "baseline": scores("baseline"),
                     "beam_width": beam_width if isinstance(beam_width, int) and not isinstance(beam_width, bool)
                     else None,
                     "baseline_caption": result.get("baseline_caption") if isinstance(
                         result.get("baseline_caption"), str) else None})
        gallery = result.get("gallery") if isinstance(result.get("gallery"), list) else []
        galleries[job.id] = [g for g in gallery if isinstance(g, dict) and isinstance(g.get("key"), str)]
    # The same photos: keys written about by at least two runs on the same dataset content.
    photos: dict[tuple, dict] = {}
    for job in captioners:
        for entry in galleries[job.id]:
            key = (_dataset_hash(job) or f"dataset {job.dataset_id}", entry["key"])
            photo = photos.setdefault(key, {
                "key": entry["key"], "dataset": job.dataset_id,
                "item": entry.get("item") if isinstance(entry.get("item"), int) else None,
                "references": [str(r) for r in entry.get("references") or [] if isinstance(r, str)],
                "captions": []})
            photo["captions"].append({"job": job.id, "greedy": str(entry.get("greedy") or ""),
                                      "beam": str(entry.get("beam") or "")})
    shared = [photo for photo in photos.values() if len(photo["captions"]) >= 2]
    note = None
    if len(captioners) >= 2 and not shared:
        note = ("These caption models were not scored on the same photos (different datasets, or a dataset that "
                "changed), so their captions cannot be set side by side.")
    return {"runs": runs, "photos": shared, "note": note}, {p["item"] for p in shared if p["item"]}


def _repeats(jobs: list[Job], entries: dict[int, dict]) -> list[dict]:
    """For each compared run that repeats another compared run: how far it landed from the original."""
    ids = {job.id for job in jobs}
    repeats = []
    for job in jobs:
        original = entries[job.id]["rerun_of"]
        if original not in ids or original == job.id:
            continue
        before, after = entries[original], entries[job.id]
        differences, parts = [], []
        for key, label in REPEAT_METRICS:
            if before[key] is None or after[key] is None:
                continue
            difference = after[key] - before[key]
            differences.append({"metric": key, "label": label, "original": before[key], "repeat": after[key],
                                "difference": difference})
            if key in ("test_accuracy", "best_val_accuracy"):
                parts.append(f"{label} {after[key] * 100:.1f}% against {before[key] * 100:.1f}% "
                             f"({difference * 100:+.1f} points)")
            else:
                parts.append(f"{label} {after[key]:.3f} against {before[key]:.3f} ({difference:+.3f})")
        head = f"{after['label']} repeats {before['label']}"
        if not differences:
            sentence = f"{head}; there are no scores of both to set side by side yet."
        elif all(abs(d["difference"]) < 1e-12 for d in differences):
            sentence = f"{head} and landed exactly where it did: " + ", ".join(parts) + "."
        else:
            sentence = f"{head}: " + ", ".join(parts) + "."
        same_seed = before["seed"] == after["seed"]
        repeats.append({"original": original, "repeat": job.id, "same_seed": same_seed,
                        "differences": differences, "sentence": sentence})
    return repeats


# --- the whole answer -----------------------------------------------------------------------------

def compare_runs(user, ids: Sequence[int], full: bool = False) -> dict:
    """The comparison of runs `ids` of `user` (parse_ids' answer); RunsNotFound names ids not theirs."""
    staff = bool(getattr(user, "is_staff", False))
    found = {job.id: job for job in Job.objects.filter(owner=user, id__in=list(ids)).select_related(
        "project").only(*JOB_FIELDS).prefetch_related("tags")}
    missing = [i for i in ids if i not in found]
    if missing:
        raise RunsNotFound("No run " + ", ".join(f"#{i}" for i in missing) + " of yours.")
    jobs = [found[i] for i in ids]
    rows: dict[int, list[JobMetric]] = {}
    for metric in JobMetric.objects.filter(job_id__in=list(ids)).only(
            "job_id", "epoch", "values", "recorded_at").order_by("job_id", "epoch"):
        rows.setdefault(metric.job_id, []).append(metric)
    entries = {}
    for job in jobs:
        as_dicts = [{"epoch": m.epoch, **(m.values or {})} for m in rows.get(job.id, [])]
        entries[job.id] = _job_entry(job, as_dicts, staff)
    params, differing = _params(jobs, staff)
    pairs, shown = _pairs(jobs)
    captions, caption_items = _captions(jobs)
    found_images = _thumbs(set(shown), caption_items)
    for pair in pairs:
        for examples in pair["examples"].values():
            for example in examples:
                example.update(_picture(found_images.get((pair["dataset"], example["path"]))))
    for photo in captions["photos"]:
        photo.update({k: v for k, v in _picture(found_images.get(photo["item"])).items() if k != "item"})
    return {
        "jobs": [entries[job.id] for job in jobs],
        "params": params,
        "differing": differing,
        "param_labels": {name: label for name in params
                         if (label := next((lb for job in jobs if (lb := param_label(job.kind, name)) != name), None))},
        "metrics": _metrics(jobs, rows, entries, full),
        "pairs": pairs,
        "captions": captions,
        "repeats": _repeats(jobs, entries),
        "active": any(job.is_active for job in jobs),
        "generated_at": _iso(timezone.now()),
    }
