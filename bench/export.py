#!/usr/bin/env python
"""Model export: every format against the Keras original it came from, measured in one run.

LeNet-5 (28x28 grayscale) is trained on scikit-learn's digits (1,797 real 8x8 scans written as
28x28 PNG files, split 70/15/15 by class, as tests/test_training.py does), then exported to every
format of `jobs.ml.export` and each file is run in its own runtime on the test split beside the
Keras model. Per format it prints the export time, the file size and its ratio to `model.keras`,
the median single-image CPU latency and the speed-up over the Keras model (its own median, taken in
the same run), the accuracy change, the top-1 agreement and the largest probability difference.
Usage: .venv/bin/python bench/export.py [--epochs 12]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def digits(root: Path) -> dict[str, list[tuple[str, int]]]:
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    pixels = np.clip(np.round(data.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    items = []
    for index, (scan, label) in enumerate(zip(pixels, data.target, strict=True)):
        path = root / str(label) / f"digit-{index:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(scan, "L").resize((28, 28), Image.Resampling.BILINEAR).save(path)
        items.append((str(path), int(label)))
    train, rest = train_test_split(items, test_size=0.3, stratify=[y for _, y in items], random_state=0)
    val, test = train_test_split(rest, test_size=0.5, stratify=[y for _, y in rest], random_state=0)
    return {"train": train, "val": val, "test": test}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=12)
    args = parser.parse_args()

    from jobs.ml.export import FORMATS, export_model, verify_export, within_tolerance
    from jobs.ml.progress import NullSink
    from jobs.ml.training import TrainConfig, train_classifier

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
        rows, keras_latencies = [], []
        for fmt in FORMATS:
            started = time.perf_counter()
            path = export_model(model_dir, fmt, tmp / "exports", [p for p, _ in splits["train"]], NullSink())
            seconds = time.perf_counter() - started
            figures = verify_export(path, fmt, model_dir, splits["test"], NullSink())
            keras_latencies.append(figures["original_latency_ms"])
            rows.append((fmt, seconds, figures, within_tolerance(fmt, figures)))

    keras_ms = statistics.median(keras_latencies)
    print(f"LeNet-5 28x28x1, {len(splits['train'])} train / {len(splits['test'])} test digits, {args.epochs} epochs: "
          f"Keras test accuracy {result.test_accuracy:.3f}, model.keras {keras_size / 1e3:.0f} kB, "
          f"Keras single-image latency {keras_ms:.2f} ms (median over the {len(rows)} checks)")
    print(f"{'format':<16}{'export s':>9}{'size kB':>9}{'/keras':>8}{'latency ms':>12}{'speed-up':>10}"
          f"{'acc change':>12}{'agreement':>11}{'max p diff':>12}")
    for fmt, seconds, figures, problem in rows:
        print(f"{fmt:<16}{seconds:>9.2f}{figures['size'] / 1e3:>9.1f}{figures['size'] / keras_size:>8.2f}"
              f"{figures['latency_ms']:>12.3f}{keras_ms / figures['latency_ms']:>9.1f}x"
              f"{figures['accuracy_change'] * 100:>+11.2f}%{figures['agreement']:>11.3f}"
              f"{figures['max_prob_diff']:>12.2e}" + (f"  ! {problem}" if problem else ""))


if __name__ == "__main__":
    main()
