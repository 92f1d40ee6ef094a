"""What the sandbox runs on an uploaded model file: inspection at upload, the sanity check, and
feature extraction over a dataset.

Inspection and the check are the only places an uploaded file is opened before its owner has
seen it work, and extraction runs it over thousands of images nobody checked it on, so all three
run in `jobs.sandbox`'s child process, never in the shared inference worker or a job's worker
process. Each function takes and returns plain JSON data; a ValueError's sentence comes back as
{"error": ...}.
"""

from __future__ import annotations

from pathlib import Path


def inspect(path: str, output: str | None, input_size: int | None, name: str, scaling: dict | None = None,
            labels_path: str | None = None, photos: list | None = None) -> dict:
    """The backbone record of the file (with its scaling and why), and its sanity report."""
    from jobs.ml.backbones import inspect_file, suggest_scaling
    from jobs.ml.scaling import InputScaling

    chosen = InputScaling.from_dict(scaling) if scaling else None
    backbone = inspect_file(Path(path), output or None, input_size, name=name, scaling=chosen)
    source = "chosen by its owner" if chosen else suggest_scaling(Path(path))[1]
    return {**backbone.to_dict(), "scaling_source": source, "sanity": _sanity(backbone, labels_path, photos)}


def check(backbone: dict, labels_path: str | None = None, photos: list | None = None) -> dict:
    """The sanity report of a stored backbone under the scaling its record names."""
    from jobs.ml.backbones import Backbone

    return {"sanity": _sanity(Backbone.from_dict(backbone), labels_path, photos)}


def _sanity(backbone, labels_path: str | None, photos: list | None) -> dict:
    """jobs.ml.sanity's report, labelled by the owner's labels file, else the labels the file itself carries
    (a TFLite file's metadata)."""
    from jobs.ml import formats
    from jobs.ml.sanity import check as sanity_check

    if labels_path and Path(labels_path).is_file():
        labels = Path(labels_path).read_text(encoding="utf-8", errors="replace").splitlines()
    else:
        labels = formats.by_kind(backbone.kind).labels(Path(backbone.source))
    return sanity_check(backbone, [(str(n), Path(p)) for n, p in photos or ()], labels)


def extract(paths: list, backbone: dict, target: str, progress_path: str, batch_size: int = 32,
            precision: str = "auto", start: float = 0.0, end: float = 1.0) -> dict:
    """`jobs.ml.features.extract_to_file` on a stored backbone: its stats; progress to `progress_path`."""
    from jobs.ml.backbones import Backbone
    from jobs.ml.features import extract_to_file
    from jobs.ml.progress import FileSink

    return extract_to_file(paths, Backbone.from_dict(backbone), Path(target), FileSink(progress_path),
                           batch_size=batch_size, precision=precision, start=start, end=end)


def export(model_dir: str, fmt: str, out_dir: str, calibration: list, test_items: list, progress_path: str) -> dict:
    """`jobs.ml.export`: convert a trained classifier, then run the file in its own runtime on the test images.

    In the sandbox because a converter can crash its process (TFLite's int8 quantizer segfaults on some
    activations) and a worker must outlive that. Converting takes the first 80 % of the bar, checking the rest.
    """
    from jobs.ml.export import export_model, verify_export
    from jobs.ml.progress import FileSink, ScaledSink

    sink = FileSink(progress_path)
    path = export_model(Path(model_dir), fmt, Path(out_dir), list(calibration), ScaledSink(sink, 0.0, 0.8))
    figures = verify_export(path, fmt, Path(model_dir), [(str(p), int(c)) for p, c in test_items],
                            ScaledSink(sink, 0.8, 1.0))
    return {"file": path.name, **figures}


FUNCTIONS = {"inspect": inspect, "check": check, "extract": extract, "export": export}
