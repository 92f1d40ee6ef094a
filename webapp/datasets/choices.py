"""Names for dropdowns that tell apart two things called the same.

Two datasets called "shapes" (the built-in added twice, or two uploads of shapes.zip) look the same
in a <select>, and the person picks one at random. Every dropdown of datasets, models and backbones
labels a shared name with what differs: "shapes (#12, 180 images, 3 Nov)". A unique name stays as
it is, so most menus read as before.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import TypeVar

from django.utils import timezone

T = TypeVar("T")


def told_apart(items: Iterable[T], name: Callable[[T], str], details: Callable[[T], str]) -> list[tuple[T, str]]:
    """(item, label) in order: the item's name, or "name (details)" when another item has the same name."""
    items = list(items)
    counts = Counter(name(item) for item in items)
    return [(item, name(item) if counts[name(item)] == 1 else f"{name(item)} ({details(item)})") for item in items]


def short_date(moment) -> str:
    return f"{timezone.localtime(moment):%-d %b}"


def dataset_details(dataset) -> str:
    """#id, its size and the day it was added: what tells two datasets of one name apart."""
    size = (f"{dataset.num_items:,} image{'' if dataset.num_items == 1 else 's'}"
            if dataset.status == "ready" else dataset.status)
    return f"#{dataset.id}, {size}, {short_date(dataset.created_at)}"


def named_datasets(datasets) -> list:
    """The datasets as a list, each with `choice_name`: what a dropdown shows for it."""
    named = told_apart(datasets, lambda d: d.name, dataset_details)
    for dataset, label in named:
        dataset.choice_name = label
    return [dataset for dataset, _ in named]
