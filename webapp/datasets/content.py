"""Which images a dataset holds, as one key: what the feature cache is named by (jobs.features).

Kept with the datasets, not in the worker's glue, because the web side asks it too (deleting a dataset
removes its cached features only when no other dataset shares them).
"""

from __future__ import annotations

import hashlib


def layout_hash(dataset) -> str:
    """sha256 over every (path, image checksum) pair: which image sits under which name.

    The content hash ignores names (the same images renamed are "the same data"), but cached
    rows are keyed by path, so the cache must not be shared between two layouts of one content.
    """
    digest = hashlib.sha256()
    for path, checksum in dataset.items.order_by("path").values_list("path", "checksum").iterator(chunk_size=5000):
        digest.update(f"{path}\0{checksum}\n".encode())
    return digest.hexdigest()


def content_key(dataset) -> str:
    """The feature cache's name for the dataset: its content hash and its layout (kept in `stats` once made).

    Two datasets share cached features only when every path holds the same image in both, so a
    row can never be served for another image, even when permuted names leave the content hash
    unchanged.
    """
    if not dataset.content_hash:
        return f"dataset-{dataset.pk}"
    stats = dataset.stats if isinstance(dataset.stats, dict) else {}
    layout = stats.get("layout_hash")
    if not layout:
        layout = layout_hash(dataset)
        dataset.stats = {**stats, "layout_hash": layout}
        type(dataset).objects.filter(pk=dataset.pk).update(stats=dataset.stats)
    return hashlib.sha256(f"{dataset.content_hash}\0{layout}".encode()).hexdigest()
