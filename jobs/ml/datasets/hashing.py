"""The content hash: one fingerprint for what a dataset holds, not how its archive was packed.

Two uploads of the same labelled images (and captions) get the same hash whatever the member
order, file names or enclosing folders, so the app can say "this dataset is already here" and
an experiment record can name exactly the data it trained on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def item_digest(label: str, checksum: str, captions: Iterable[str] = ()) -> bytes:
    """sha256(label + "\\0" + checksum + "\\0" + "\\n".join(sorted captions)), raw 32 bytes.

    Raw bytes rather than hex: ingestion keeps one per item until the end, so half the memory.
    """
    text = label + "\0" + checksum + "\0" + "\n".join(sorted(captions))
    return hashlib.sha256(text.encode("utf-8")).digest()


def content_hash(digests: Iterable[bytes]) -> str:
    """sha256 hex over the item digests in sorted order (so independent of member order)."""
    h = hashlib.sha256()
    for digest in sorted(digests):
        h.update(digest)
    return h.hexdigest()
