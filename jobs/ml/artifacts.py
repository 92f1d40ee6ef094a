"""Writing job artifacts so that a reader never sees half a file.

Checkpoints, models, metadata and feature sets are read by other processes (a resumed job,
the inference worker, a download) possibly while a job is writing them, and a job can die
mid-write; every artifact is therefore written beside its final name and moved over it.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

# The files a trained model is: the Keras archive, and its metadata (label map, input, backbone)
# beside it and inside it, so a downloaded .keras describes itself.
MODEL_FILE, METADATA_FILE = "model.keras", "metadata.json"
EMBEDDED_METADATA = "visionlab.json"


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


def portable(metadata: dict) -> dict:
    """The metadata a model file carries away from the server: its backbone without `source`, the
    backbone file's place on this server (meaningless elsewhere, and not for its downloaders to read)."""
    backbone = metadata.get("backbone")
    if not isinstance(backbone, dict) or "source" not in backbone:
        return metadata
    return {**metadata, "backbone": {k: v for k, v in backbone.items() if k != "source"}}


def backbone_record(model_dir: Path, metadata: dict) -> dict:
    """The metadata's backbone with its `source` resolved: kept models name their copy of the backbone
    file relative to their own folder (jobs.training.keep_model); absolute paths are older records."""
    backbone = dict(metadata.get("backbone") or {})
    if backbone.get("source"):
        backbone["source"] = str(Path(model_dir) / backbone["source"])
    return backbone


def save_model(model, workdir: Path, metadata: dict) -> Path:
    """`workdir/model.keras` without the optimizer state (a third of the size with Adam), with its
    metadata inside as `visionlab.json` (Keras ignores the extra member; `portable`: no server path)
    and beside it."""
    import keras

    path = Path(workdir) / MODEL_FILE
    inputs = model.inputs if len(model.inputs) > 1 else model.inputs[0]
    plain = keras.Model(inputs, model.outputs[0], name=model.name)  # the same layers, never compiled

    def save(target):
        plain.save(target)
        with zipfile.ZipFile(target, "a") as archive:
            archive.writestr(EMBEDDED_METADATA, json.dumps(portable(metadata), indent=1))

    write_atomically(path, save)
    write_json(Path(workdir) / METADATA_FILE, metadata)
    return path
