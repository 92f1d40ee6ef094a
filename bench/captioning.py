#!/usr/bin/env python
"""Caption training: VisionLab's progressive pipeline against the plain script a user would write.

On the same captions (generated shapes, Flickr8k layout) and the same real features (the 512-d
average pool of the published quantized MobileNet v1 0.5 in tests/data/pretrained, fed raw uint8
pixels resized to 160x160), the same merge model size, batch size, learning rate, seed and
epochs, it measures in one run:

  (a) the plain script: every (image, caption prefix, next word) sample made in memory at once
      (the image's features repeated per word position, prefixes padded to the longest caption,
      next-word targets), then `model.fit(batch_size=...)` on those numpy arrays, timed around
      `fit` (no validation data, so only training batches);
  (b) VisionLab: `train_captioner` on the feature matrix (early stopping off, so it trains the
      same epochs), timed by its own clock over its training batches (its validation passes,
      scoring and saving are left out, as in (a)).

It prints samples/s of each and their ratio (b/a), BLEU-4 of greedy captions on the test
images for each (with the most-common-caption baseline) and the memory the training data takes
in each: (a) grows with the number of samples, (b) keeps the feature matrix and int tokens.

`--sweep` instead trains VisionLab's captioner with one setting changed at a time from the
defaults (CaptionConfig) and prints the table those defaults were chosen from.
Usage: .venv/bin/python bench/captioning.py [--images 1000] [--epochs 5] [--batch-size 128]
       .venv/bin/python bench/captioning.py --sweep [--images 1000]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

QUANT_TFLITE = Path(__file__).resolve().parent.parent / "tests" / "data" / "pretrained" / \
    "mobilenet_v1_0.5_160_quant.tflite"
EMBEDDING_TENSOR = "MobilenetV1/Logits/AvgPool_1a/AvgPool"
INPUT_SIZE = 160
IMAGE_SIZE = 64  # px of the generated pictures, as the tests use
PLAIN_BATCH = 128  # the batch size of the plain script a user would write

# The sweep: one setting changed at a time from the defaults, each run to its early stop; a second
# model seed for two of them shows how far runs at the same settings differ.
SWEEP = (
    {}, {"seed": 1},
    {"learning_rate": 3e-4}, {"learning_rate": 3e-3},
    {"batch_size": 64}, {"batch_size": 64, "seed": 1}, {"batch_size": 256},
    {"dropout": 0.2}, {"dropout": 0.0},
    {"units": 128, "embedding_dim": 128},
)


def shapes_with_real_features(folder: Path, n_images: int, seed: int = 0):
    """(keys, features (N, 512), captions per key, splits) of a generated shapes caption set."""
    import tensorflow as tf
    from PIL import Image

    from jobs.ml.datasets.synthetic import make_shapes_captions_zip

    archive = make_shapes_captions_zip(folder / "shapes.zip", n_images=n_images, size=IMAGE_SIZE, seed=seed)
    interpreter = tf.lite.Interpreter(model_path=str(QUANT_TFLITE), experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    pixels_in = interpreter.get_input_details()[0]["index"]
    embedding = next(d for d in interpreter.get_tensor_details() if d["name"] == EMBEDDING_TENSOR)
    scale, zero = embedding["quantization"]
    keys, rows, captions, splits = [], [], {}, {}
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()

        def text(suffix: str) -> str:
            return zf.read(next(n for n in names if n.endswith(suffix))).decode("utf-8")

        for line in text("Flickr8k.token.txt").splitlines():
            image, _, caption = line.partition("\t")
            captions.setdefault(image.split("#")[0], []).append(caption)
        for split, stem in (("train", "train"), ("val", "dev"), ("test", "test")):
            splits[split] = text(f"Flickr_8k.{stem}Images.txt").split()
        for name in sorted(n for n in names if n.endswith(".jpg")):
            image = Image.open(io.BytesIO(zf.read(name))).convert("RGB").resize((INPUT_SIZE, INPUT_SIZE),
                                                                               Image.BILINEAR)
            interpreter.set_tensor(pixels_in, np.asarray(image, dtype=np.uint8)[None])
            interpreter.invoke()
            rows.append(scale * (interpreter.get_tensor(embedding["index"]).reshape(-1).astype(np.float32) - zero))
            keys.append(name.rsplit("/", 1)[1])
    return keys, np.stack(rows), captions, splits


def test_bleu4(model, vocab, max_length: int, features: np.ndarray, captions: dict, keys: list[str]) -> float:
    """Corpus BLEU-4 of greedy captions against every reference, tokenised as train_captioner scores them."""
    from jobs.ml.bleu import corpus_bleu
    from jobs.ml.captioning import Captioner
    from jobs.ml.datasets.captions import clean_caption

    greedy = Captioner(model, vocab, max_length).caption_batch(features)
    references = [[clean_caption(c).split() for c in captions[key]] for key in keys]
    return corpus_bleu(references, [c.split() for c in greedy])["bleu4"]


def plain_script(keys, matrix, captions, splits, config) -> dict:
    """What a user writes: all samples as numpy arrays, then model.fit (same model, batch, seed and epochs)."""
    import keras

    from jobs.ml.captioning import build_merge_model, build_vocabulary, encode_captions

    row = {k: i for i, k in enumerate(keys)}
    vocab = build_vocabulary({k: captions[k] for k in splits["train"]})
    length = vocab.longest
    encoded = encode_captions(splits["train"], captions, vocab, length, row)
    rows, prefixes, targets = encoded.samples(np.arange(encoded.n_samples))
    image_features = matrix[rows]  # one copy of the image's features per word position
    keras.utils.set_random_seed(config.seed)
    model = build_merge_model(matrix.shape[1], vocab.size, length, config.embedding_dim, config.units,
                              config.dropout, config.seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit({"image_features": image_features, "words": prefixes}, targets, batch_size=config.batch_size,
              epochs=config.epochs, verbose=0)
    seconds = time.perf_counter() - start
    test = splits["test"]
    return {"seconds": seconds, "samples_per_s": len(targets) * config.epochs / seconds,
            "bleu4": test_bleu4(model, vocab, length, matrix[[row[k] for k in test]], captions, test),
            "bytes": image_features.nbytes + prefixes.nbytes + targets.nbytes, "samples": len(targets)}


def visionlab(keys, matrix, captions, splits, config, workdir: Path) -> dict:
    from jobs.ml.captioning import ArrayFeatures, train_captioner
    from jobs.ml.progress import NullSink

    result = train_captioner(ArrayFeatures(keys, matrix), captions, splits, config, workdir, NullSink())
    train_seconds = result.samples_per_epoch * result.epochs_run / result.samples_per_second
    return {"result": result, "seconds": train_seconds, "samples_per_s": result.samples_per_second,
            "bleu4": result.bleu["greedy"]["bleu4"], "beam4": result.bleu["beam"]["bleu4"],
            "baseline4": result.bleu["baseline"]["bleu4"]}


def pipeline_bytes(keys, captions, splits) -> int:
    """What VisionLab's training keeps besides the feature matrix: int tokens, rows, offsets, one order."""
    n_captions = sum(len(captions[k]) for k in splits["train"])
    longest = max(len(c.split()) for k in splits["train"] for c in captions[k]) + 2
    samples = sum(len(c.split()) + 1 for k in splits["train"] for c in captions[k])
    return n_captions * (longest * 4 + 4 + 8 + 8) + samples * 8


def compare(args, data, tmp: Path) -> None:
    from jobs.ml.captioning import CaptionConfig

    keys, matrix, captions, splits = data
    config = replace(CaptionConfig(), epochs=args.epochs, batch_size=args.batch_size or PLAIN_BATCH,
                     early_stopping_patience=None, beam_width=1)
    if args.units:
        config = replace(config, units=args.units, embedding_dim=args.units)
    plain = plain_script(keys, matrix, captions, splits, config)
    ours = visionlab(keys, matrix, captions, splits, config, tmp / "run")
    result = ours["result"]
    print(f"{len(keys)} shapes pictures ({len(splits['train'])} train, {len(splits['test'])} test), "
          f"real MobileNet v1 0.5 features ({matrix.shape[1]}-d); {plain['samples']:,} training samples per epoch")
    print(f"merge model: units {config.units}, {result.params:,} params, vocabulary {result.vocab_size}, "
          f"length {result.max_length}; batch {config.batch_size}, Adam {config.learning_rate}, "
          f"dropout {config.dropout}, {config.epochs} epochs; {result.device}")
    print(f"(a) plain script, model.fit on arrays: {plain['seconds']:7.1f} s  {plain['samples_per_s']:8.0f} samples/s"
          f"  BLEU-4 {plain['bleu4']:.3f}  training data {plain['bytes'] / 2**20:7.1f} MiB")
    print(f"(b) VisionLab train_captioner:         {ours['seconds']:7.1f} s  {ours['samples_per_s']:8.0f} samples/s"
          f"  BLEU-4 {ours['bleu4']:.3f}  training data {pipeline_bytes(keys, captions, splits) / 2**20:7.1f} MiB"
          f" + the feature matrix {matrix.nbytes / 2**20:.1f} MiB (best epoch {result.best_epoch})")
    print(f"samples/s ratio b/a: {ours['samples_per_s'] / plain['samples_per_s']:.2f}   "
          f"most-common-caption baseline BLEU-4: {ours['baseline4']:.3f}")


def sweep(args, data, tmp: Path) -> None:
    from jobs.ml.captioning import CaptionConfig

    keys, matrix, captions, splits = data
    base = replace(CaptionConfig(), epochs=args.epochs, beam_width=3)
    if args.batch_size:
        base = replace(base, batch_size=args.batch_size)
    if args.patience is not None:
        base = replace(base, early_stopping_patience=args.patience or None)
    print(f"{len(keys)} shapes pictures, real MobileNet v1 0.5 features; defaults: "
          f"{ {k: v for k, v in asdict(base).items() if k in ('units', 'batch_size', 'learning_rate', 'dropout')} }, "
          f"up to {base.epochs} epochs, patience {base.early_stopping_patience}")
    print("| change | epochs run | best epoch | best val_loss | BLEU-4 greedy | BLEU-4 beam | samples/s | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    curves = []
    for i, change in enumerate(SWEEP):
        config = replace(base, **change)
        started = time.perf_counter()
        ours = visionlab(keys, matrix, captions, splits, config, tmp / f"sweep{i}")
        result = ours["result"]
        best = min(h["val_loss"] for h in result.history)
        print(f"| {change or 'defaults'} | {result.epochs_run} | {result.best_epoch} | {best:.3f} "
              f"| {ours['bleu4']:.3f} | {ours['beam4']:.3f} | {ours['samples_per_s']:.0f} "
              f"| {time.perf_counter() - started:.0f} |", flush=True)
        curves.append(f"{change or 'defaults'}: val_loss " + " ".join(f"{h['val_loss']:.3f}" for h in result.history))
    print(f"most-common-caption baseline BLEU-4: {ours['baseline4']:.3f}")
    print("\n".join(curves))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=None, help="default: 5, or CaptionConfig's with --sweep")
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"default: {PLAIN_BATCH}, the plain script's, or CaptionConfig's with --sweep")
    parser.add_argument("--patience", type=int, default=None, help="--sweep: early stopping (0: off)")
    parser.add_argument("--units", type=int, default=None, help="default: CaptionConfig's")
    parser.add_argument("--seed", type=int, default=0, help="of the generated pictures")
    parser.add_argument("--sweep", action="store_true")
    args = parser.parse_args()

    from jobs.ml.captioning import CaptionConfig

    if args.epochs is None:
        args.epochs = CaptionConfig().epochs if args.sweep else 5
    with tempfile.TemporaryDirectory(prefix="visionlab-bench-") as tmp:
        tmp = Path(tmp)
        data = shapes_with_real_features(tmp, args.images, args.seed)
        (sweep if args.sweep else compare)(args, data, tmp)


if __name__ == "__main__":
    main()
