"""`manage.py seed_datasets`: give a fresh install real data to train on at once.

`make run` calls it once the stack is up. The first time, it queues the offline built-in
datasets (scikit-learn's digits, generated shapes and shape captions) for the first
superuser; a marker in DATA_DIR makes later starts skip it, even if the user deletes them.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from webapp.datasets import services
from webapp.datasets.sources import SOURCES
from webapp.jobs.launch import QueueUnavailable

MARKER = "builtin-datasets-seeded"


class Command(BaseCommand):
    help = "Queue the offline built-in datasets for the first superuser, once per DATA_DIR."

    def handle(self, *args, **options):
        marker = settings.DATA_DIR / MARKER
        owner = get_user_model().objects.filter(is_superuser=True).order_by("id").first()
        if marker.exists() or owner is None:
            return
        names = []
        for source in SOURCES.values():
            if source.offline:
                try:
                    services.dataset_from_source(owner, source.source, source.title, source.kind)
                except QueueUnavailable as exc:
                    self.stderr.write(f"Could not queue the built-in datasets: {exc}")
                    return
                names.append(source.title)
        marker.write_text("\n".join(names) + "\n")
        self.stdout.write(f"Reading the built-in datasets in the background: {', '.join(names)}.")
