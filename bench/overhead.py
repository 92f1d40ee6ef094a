#!/usr/bin/env python
"""Training overhead: a VisionLab job against the plain Keras script a user would write.

On the same images (the train split of a generated 3-class shapes dataset), the same model
(LeNet-5 at 32x32 RGB), batch size, optimizer and epochs, it measures in one run:

  (a) the plain script: `keras.utils.image_dataset_from_directory` on the train images, then
      `model.fit` (seeded, same learning rate), timed around `fit`;
  (b) VisionLab: the dataset uploaded and ingested, then a training job through the API,
      timed by the job over its training batches (as `fit` without validation in (a)), and
      also as a whole and from POST to "succeeded".

It prints both wall times and images/s and their ratios. The platform's tf.data pipeline
(parallel decode, cache, prefetch) and throttled progress reporting must make (b) no slower
than (a).
Usage: .venv/bin/python bench/overhead.py [--images 3000] [--epochs 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import upload  # noqa: E402
from bench.stack import call, running_stack  # noqa: E402

SIZE, BATCH, LR = 32, 32, 0.005


def plain_keras(train_dir: Path, epochs: int, seed: int = 0) -> dict:
    import keras

    from jobs.ml.zoo import build_model

    keras.utils.set_random_seed(seed)
    data = keras.utils.image_dataset_from_directory(train_dir, image_size=(SIZE, SIZE), batch_size=BATCH,
                                                    seed=seed, color_mode="rgb")
    count = sum(1 for _ in train_dir.rglob("*") if _.is_file())
    model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Rescaling(1 / 255),
                              build_model("lenet5", (SIZE, SIZE, 3), len(data.class_names))])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=LR), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    start = time.perf_counter()
    history = model.fit(data, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "images_per_s": count * epochs / seconds,
            "accuracy": history.history["accuracy"][-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()

    from jobs.ml.datasets.synthetic import make_shapes_classification_zip

    with running_stack() as (tmp, url, token):
        archive = make_shapes_classification_zip(tmp / "shapes.zip", per_class=args.images // 3, size=64)
        dataset = call(url + "/api/datasets/", token, {"upload": upload(url, token, archive),
                                                       "kind": "classification"})
        while dataset["status"] not in ("ready", "failed"):
            time.sleep(0.5)
            dataset = call(f"{url}/api/datasets/{dataset['id']}/", token)
        items, offset = [], 0
        while offset < dataset["num_items"]:
            page = call(f"{url}/api/datasets/{dataset['id']}/items/?split=train&limit=500&offset={offset}",
                        token)["results"]
            if not page:
                break
            items += page
            offset += 500
        # The plain script reads the very files VisionLab trains on: the stored train split.
        images = tmp / "data" / "datasets" / str(dataset["id"]) / "images"
        train_dir = tmp / "train"
        for item in items:
            target = train_dir / item["label"] / Path(item["path"]).name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(images / item["path"], target)
        plain = plain_keras(train_dir, args.epochs)

        body = {"kind": "train", "dataset": dataset["id"], "architecture": "lenet5", "queue": "cpu",
                "params": {"image_size": SIZE, "color_mode": "rgb", "epochs": args.epochs,
                           "batch_size": BATCH, "optimizer": "adam", "learning_rate": LR}}
        start = time.perf_counter()
        job = call(url + "/api/jobs/", token, body)
        while job["status"] in ("queued", "running"):
            time.sleep(0.2)
            job = call(f"{url}/api/jobs/{job['id']}/", token)
        end_to_end = time.perf_counter() - start
        if job["status"] != "succeeded":
            raise SystemExit(f"The training job ended {job['status']}: {job['error']}")

    # Like (a), which runs only training batches: the job's own clock over its training batches
    # (its validation passes, test evaluation and model saving are reported separately).
    job_rate = job["result"]["images_per_second"]
    job_seconds = len(items) * args.epochs / job_rate
    print(f"train images: {len(items)}, epochs: {args.epochs}, LeNet-5 {SIZE}x{SIZE} RGB, batch {BATCH}")
    print(f"(a) plain Keras script, model.fit:  {plain['seconds']:7.1f} s  {plain['images_per_s']:8.0f} images/s")
    print(f"(b) VisionLab job, training:        {job_seconds:7.1f} s  {job_rate:8.0f} images/s"
          f"  (whole job with validation, test and saving: {job['result']['train_seconds']:.1f} s;"
          f" POST to succeeded: {end_to_end:.1f} s)")
    print(f"wall-time ratio b/a: {job_seconds / plain['seconds']:.2f}   "
          f"images/s ratio b/a: {job_rate / plain['images_per_s']:.2f}   (below 1.00 / above 1.00 = faster)")


if __name__ == "__main__":
    main()
