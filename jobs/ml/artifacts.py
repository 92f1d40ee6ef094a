"""Writing job artifacts so that a reader never sees half a file.

Checkpoints, models, metadata and feature sets are read by other processes (a resumed job,
the inference worker, a download) possibly while a job is writing them, and a job can die
mid-write; every artifact is therefore written beside its final name and moved over it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_atomically(path: Path, write) -> None:
    """Call `write(tmp_path)`, then move the result over `path`: readers never see half a file."""
    # Keras insists on the final suffix (".keras", ".npz"), so the marker goes before it.
    tmp = path.with_name(f"{path.stem}.partial{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, data: dict) -> None:
    write_atomically(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1), encoding="utf-8"))
