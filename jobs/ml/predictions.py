"""The per-image predictions file a classifier job leaves beside its model.

What the model said about every evaluated image, as rows of (path relative to the dataset's
images folder, true class index, predicted class index) in a small gzipped JSON file; the job's
result keeps only a pointer to it and a count. The training job writes it and the compare page
(`webapp.experiments.compare`) reads it to score runs image by image, so the format lives here,
in the core both sides import, rather than in either of them. No TensorFlow: the web reads it.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from jobs.ml.artifacts import write_atomically

PREDICTIONS_FILE = "predictions.json.gz"
PREDICTIONS_FORMAT = 1


def write_predictions(directory: Path, rows: Iterable[Sequence], images_dir: Path | str, classes: Sequence[str],
                      evaluated_on: str) -> dict:
    """Write what a classifier said about each evaluated image (rows of (path, true index, predicted
    index)) to `directory`/PREDICTIONS_FILE, paths relative to `images_dir`; returns the pointer the
    job's result keeps: {"file", "count", "evaluated_on"}."""
    prefix = str(images_dir).rstrip("/") + "/"
    items = [[str(path).removeprefix(prefix), int(true), int(predicted)] for path, true, predicted in rows]
    body = json.dumps({"format": PREDICTIONS_FORMAT, "classes": list(classes), "evaluated_on": evaluated_on,
                       "rows": items}, separators=(",", ":")).encode("utf-8")
    path = Path(directory) / PREDICTIONS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda tmp: tmp.write_bytes(gzip.compress(body, compresslevel=6, mtime=0)))
    return {"file": PREDICTIONS_FILE, "count": len(items), "evaluated_on": evaluated_on}


def read_predictions(path: Path) -> dict | None:
    """{"classes", "evaluated_on", "rows": {path: (true, predicted)}} of a predictions file, None if unreadable."""
    try:
        data = json.loads(gzip.decompress(Path(path).read_bytes()))
        rows = {str(p): (int(t), int(q)) for p, t, q in data["rows"]}
        return {"classes": [str(c) for c in data.get("classes", [])], "evaluated_on": data.get("evaluated_on"),
                "rows": rows}
    except (OSError, ValueError, KeyError, TypeError, EOFError, gzip.BadGzipFile):
        return None
