"""What a dataset is missing for training, found once at ingestion and checked again at launch.

A class with fewer images than the train/validation/test split needs gets none in validation or
test: training would follow and score it on nothing, so ingestion stores a warning (shown on the
dataset's page and in GET /api/datasets/{id}/) and a training launch on it is refused with the
same sentence, before a worker spends minutes on a run whose numbers would be made up.
"""

from __future__ import annotations

from django.db.models import Count

from webapp.datasets.models import Dataset

# jobs.ml.datasets.splits.images_needed() for the split ingestion makes (80/10/10): one image for
# each of train, validation and test. The web process does not import the ML core; a test keeps
# the two equal.
NEEDED_PER_CLASS = 3

TOO_FEW_IMAGES = "too_few_images"
LOOKS_LIKE_CLASSIFICATION = "looks_like_classification"


def small_classes(dataset) -> list[dict]:
    """[{"name", "count"}] of the classes with no validation or no test image, smallest first."""
    if dataset.kind != Dataset.Kind.CLASSIFICATION:
        return []
    counts: dict[str, dict[str, int]] = {}
    for row in dataset.items.values("label", "split").annotate(n=Count("id")):
        counts.setdefault(row["label"], {})[row["split"]] = row["n"]
    small = [{"name": label, "count": sum(splits.values())} for label, splits in counts.items()
             if not splits.get("val") or not splits.get("test")]
    return sorted(small, key=lambda c: (c["count"], c["name"]))


def too_few_sentence(small: list[dict]) -> str:
    """One sentence naming the classes that are too small and the number each needs."""
    first = small[0]
    has = f"“{first['name']}” has only {first['count']} image{'' if first['count'] == 1 else 's'}"
    if len(small) > 1:
        others = len(small) - 1
        has += f" (and {others} other class{'' if others == 1 else 'es'} {'is' if others == 1 else 'are'} as small)"
    return (f"Every class needs at least {NEEDED_PER_CLASS} images, one each for training, validation and test, "
            f"and {has}. Add images to it, or leave that class folder out, and upload the dataset again.")


def too_few_warning(dataset) -> dict | None:
    """The "too_few_images" warning of a classification dataset, or None when every class is big enough."""
    small = small_classes(dataset)
    if not small:
        return None
    return {"code": TOO_FEW_IMAGES, "message": too_few_sentence(small), "classes": small[:50],
            "needed": NEEDED_PER_CLASS}
