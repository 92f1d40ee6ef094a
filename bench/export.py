#!/usr/bin/env python
"""Model export: every format against the Keras original it came from, measured in one run, for two models.

1. LeNet-5 (28x28 grayscale) trained on scikit-learn's digits (1,797 real 8x8 scans written as
   28x28 PNG files, split 70/15/15 by class, as tests/test_training.py does).
2. A transfer model on a real pretrained backbone: MobileNet v1 0.5/160 with its real ImageNet
   weights (tests/real_models.py rebuilds it in float32 from the published quantized .tflite),
   uploaded as a .keras file that wants -1..1 (the "symmetric" scaling, a frozen 1x1 convolution
   in front), its 512-d pooled embedding feeding a transfer head trained in extract mode on the
   built-in generated shapes (circle, square, triangle; random colours, sizes and rotations) at
   160x160, split 60/10/30 by class. The exported files hold the whole network, backbone included.

Each model is exported to every format of `jobs.ml.export` and each file is run in its own
runtime on the test split beside the Keras model. Per format it prints the export time, the file
size and its ratio to `model.keras`, the median single-image CPU latency and the speed-up over the
Keras model (its own median, taken in the same run), the accuracy change, the top-1 agreement and
the largest probability difference.
Usage: .venv/bin/python bench/export.py [--epochs 12] [--per-class 100] [--transfer-epochs 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def split(items: list[tuple[str, int]], val: float, test: float) -> dict[str, list[tuple[str, int]]]:
    """Stratified train / validation / test split: `val` and `test` are fractions of all the items."""
    from sklearn.model_selection import train_test_split

    train, rest = train_test_split(items, test_size=val + test, stratify=[y for _, y in items], random_state=0)
    val_items, test_items = train_test_split(rest, test_size=test / (val + test), stratify=[y for _, y in rest],
                                             random_state=0)
    return {"train": train, "val": val_items, "test": test_items}


def digits(root: Path) -> dict[str, list[tuple[str, int]]]:
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits()
    pixels = np.clip(np.round(data.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    items = []
    for index, (scan, label) in enumerate(zip(pixels, data.target, strict=True)):
        path = root / str(label) / f"digit-{index:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(scan, "L").resize((28, 28), Image.Resampling.BILINEAR).save(path)
        items.append((str(path), int(label)))
    return split(items, 0.15, 0.15)


def shapes(root: Path, per_class: int, size: int) -> tuple[dict[str, list[tuple[str, int]]], list[str]]:
    """The built-in generated shapes at `size` px, `per_class` images of each, split 60/10/30: (splits, classes)."""
    from jobs.ml.datasets.synthetic import SHAPES, make_shapes_classification_zip

    archive = make_shapes_classification_zip(root / "shapes.zip", per_class=per_class, size=size, seed=0)
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(root)
    items = [(str(path), label) for label, shape in enumerate(SHAPES)
             for path in sorted((root / "shapes" / shape).iterdir())]
    return split(items, 0.10, 0.30), list(SHAPES)


def train_mobilenet_transfer(root: Path, splits: dict, classes: list[str], epochs: int):
    """The transfer head on the real MobileNet's embedding, trained on its cached features: (its folder, result)."""
    from jobs.ml.backbones import inspect_file
    from jobs.ml.features import FeatureStore
    from jobs.ml.progress import NullSink
    from jobs.ml.scaling import InputScaling
    from jobs.ml.transfer import TransferConfig, train_transfer
    from tests.real_models import save_float_keras

    upload = save_float_keras(root / "upload", output="embedding")
    backbone = inspect_file(upload, name="mobilenet_v1_0.5_160", scaling=InputScaling("symmetric"))
    items = [(path, path) for part in splits.values() for path, _ in part]
    features, _ = FeatureStore(root / "features").ensure("shapes", items, backbone, NullSink(), precision="float32")
    config = TransferConfig(mode="extract", epochs=epochs, batch_size=32, learning_rate=1e-3, seed=0)
    model_dir = root / "model"
    result = train_transfer(splits["train"], splits["val"], splits["test"], classes, backbone, features, config,
                            model_dir, NullSink())
    return model_dir, result


def measure(model_dir: Path, splits: dict, out_dir: Path) -> tuple[list[tuple], float]:
    """Export to every format and check each file: ([(fmt, export seconds, figures, problem)], Keras ms)."""
    from jobs.ml.export import export_model, verify_export
    from jobs.ml.export_formats import FORMATS, within_tolerance
    from jobs.ml.progress import NullSink

    rows, keras_latencies = [], []
    for fmt in FORMATS:
        started = time.perf_counter()
        path = export_model(model_dir, fmt, out_dir, [p for p, _ in splits["train"]], NullSink())
        seconds = time.perf_counter() - started
        figures = verify_export(path, fmt, model_dir, splits["test"], NullSink())
        keras_latencies.append(figures["original_latency_ms"])
        rows.append((fmt, seconds, figures, within_tolerance(fmt, figures)))
    return rows, statistics.median(keras_latencies)


def print_table(heading: str, rows: list[tuple], keras_size: int, keras_ms: float) -> None:
    print(heading)
    print(f"{'format':<16}{'export s':>9}{'size kB':>9}{'/keras':>8}{'latency ms':>12}{'speed-up':>10}"
          f"{'acc change':>12}{'agreement':>11}{'max p diff':>12}")
    for fmt, seconds, figures, problem in rows:
        print(f"{fmt:<16}{seconds:>9.2f}{figures['size'] / 1e3:>9.1f}{figures['size'] / keras_size:>8.2f}"
              f"{figures['latency_ms']:>12.3f}{keras_ms / figures['latency_ms']:>9.1f}x"
              f"{figures['accuracy_change'] * 100:>+11.2f}%{figures['agreement']:>11.3f}"
              f"{figures['max_prob_diff']:>12.2e}" + (f"  ! {problem}" if problem else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=12, help="LeNet-5's epochs")
    parser.add_argument("--per-class", type=int, default=100, help="generated shapes per class for the transfer model")
    parser.add_argument("--transfer-epochs", type=int, default=20, help="the transfer head's epochs")
    args = parser.parse_args()

    import keras

    from jobs.ml.progress import NullSink
    from jobs.ml.training import TrainConfig, train_classifier
    from tests.real_models import INPUT_SIZE

    config = TrainConfig("lenet5", image_size=28, channels=1, epochs=args.epochs, batch_size=32,
                         learning_rate=0.005, seed=0)
    with tempfile.TemporaryDirectory(prefix="visionlab-bench-") as tmp:
        tmp = Path(tmp)
        splits = digits(tmp / "digits")
        model_dir = tmp / "model"
        model_dir.mkdir()
        result = train_classifier(splits["train"], splits["val"], splits["test"], [str(d) for d in range(10)],
                                  config, model_dir, NullSink())
        keras_size = (model_dir / "model.keras").stat().st_size
        rows, keras_ms = measure(model_dir, splits, tmp / "exports")
        print_table(f"LeNet-5 28x28x1, {len(splits['train'])} train / {len(splits['test'])} test digits, "
                    f"{args.epochs} epochs: Keras test accuracy {result.test_accuracy:.3f}, model.keras "
                    f"{keras_size / 1e3:.0f} kB, Keras single-image latency {keras_ms:.2f} ms (median over the "
                    f"{len(rows)} checks)", rows, keras_size, keras_ms)
        print()

        transfer_splits, classes = shapes(tmp / "shapes", args.per_class, INPUT_SIZE)
        transfer_dir, transfer = train_mobilenet_transfer(tmp / "transfer", transfer_splits, classes,
                                                          args.transfer_epochs)
        model = keras.models.load_model(transfer_dir / "model.keras", compile=False)
        backbone_params = model.get_layer("features").count_params()
        head_params = model.count_params() - backbone_params
        transfer_size = (transfer_dir / "model.keras").stat().st_size
        rows, keras_ms = measure(transfer_dir, transfer_splits, tmp / "transfer-exports")
        print_table(f"Transfer (extract mode) on the real MobileNet v1 0.5/160 (ImageNet weights, -1..1 scaling "
                    f"inside), {INPUT_SIZE}x{INPUT_SIZE}x3 generated shapes, {len(transfer_splits['train'])} train / "
                    f"{len(transfer_splits['test'])} test, {args.transfer_epochs} epochs: Keras test accuracy "
                    f"{transfer.test_accuracy:.3f}, {backbone_params:,} backbone + {head_params:,} head parameters, "
                    f"model.keras {transfer_size / 1e3:.0f} kB, Keras single-image latency {keras_ms:.2f} ms "
                    f"(median over the {len(rows)} checks)", rows, transfer_size, keras_ms)


if __name__ == "__main__":
    main()
