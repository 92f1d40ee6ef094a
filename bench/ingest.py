#!/usr/bin/env python
"""Dataset ingestion through the API: images/s, and peak memory at two archive sizes.

For each size (default 10,000 and 20,000 images of 32x32 px in 3 class folders) it starts a
fresh embedded stack, uploads the archive in chunks through `/api/uploads/` exactly as the
browser does, creates the dataset, waits until ingestion is done, and reads the peak
resident memory (VmHWM) of the web server and of the worker processes. In the same run it
measures a baseline: the loop a user would write (open the zip, `PIL.Image.open` and decode
every member), so the ingestion speed is printed as a ratio against it.

Memory must not grow with the archive: the ratio of peak memory at the larger size to the
smaller one should stay close to 1.
Usage: .venv/bin/python bench/ingest.py [--sizes 10000 20000]
"""

from __future__ import annotations

import argparse
import io
import signal
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stack import call, descendants, peak_rss_mib, start_stack  # noqa: E402

CHUNK = 8 * 1024 * 1024


def baseline_images_per_second(archive: Path) -> float:
    from PIL import Image

    start = time.perf_counter()
    count = 0
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if info.filename.endswith(".png"):
                Image.open(io.BytesIO(zf.read(info))).load()
                count += 1
    return count / (time.perf_counter() - start)


def upload(url: str, token: str, archive: Path) -> str:
    size = archive.stat().st_size
    upload_id = call(url + "/api/uploads/", token, {"filename": archive.name, "size": size})["id"]
    with open(archive, "rb") as handle:
        offset = 0
        while offset < size:
            data = handle.read(CHUNK)
            call(f"{url}/api/uploads/{upload_id}/", token, method="PUT", data=data, headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"bytes {offset}-{offset + len(data) - 1}/{size}"})
            offset += len(data)
    return upload_id


def run(size: int, workdir: Path) -> dict:
    from jobs.ml.datasets.synthetic import make_shapes_classification_zip

    archive = make_shapes_classification_zip(workdir / f"shapes-{size}.zip", per_class=size // 3, size=32)
    baseline = baseline_images_per_second(archive)
    process, url, token = start_stack(workdir / f"data-{size}")
    try:
        start = time.perf_counter()
        upload_id = upload(url, token, archive)
        uploaded = time.perf_counter()
        dataset = call(url + "/api/datasets/", token, {"upload": upload_id, "kind": "classification"})
        while dataset["status"] not in ("ready", "failed"):
            time.sleep(0.2)
            dataset = call(f"{url}/api/datasets/{dataset['id']}/", token)
        done = time.perf_counter()
        if dataset["status"] != "ready":
            raise SystemExit(f"Ingestion failed: {dataset['error']}")
        pids = descendants(process.pid)
        web = peak_rss_mib(pids, "gunicorn")
        worker = peak_rss_mib(pids, "celery")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    return {"images": dataset["num_items"], "archive_mib": archive.stat().st_size / 2**20,
            "upload_s": uploaded - start, "ingest_s": done - uploaded,
            "images_per_s": dataset["num_items"] / (done - uploaded), "baseline_per_s": baseline,
            "web_mib": web, "worker_mib": worker}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[10_000, 20_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="visionlab-bench-") as tmp:
        results = [run(size, Path(tmp)) for size in args.sizes]
    print(f"{'images':>8} {'archive':>9} {'upload':>8} {'ingest':>8} {'images/s':>9} {'baseline/s':>11} "
          f"{'ratio':>6} {'web peak':>9} {'worker peak':>12}")
    for r in results:
        ratio = r["images_per_s"] / r["baseline_per_s"]
        print(f"{r['images']:>8} {r['archive_mib']:>7.1f}MB {r['upload_s']:>7.1f}s {r['ingest_s']:>7.1f}s "
              f"{r['images_per_s']:>9.0f} {r['baseline_per_s']:>11.0f} {ratio:>6.2f} "
              f"{r['web_mib']:>7.0f}MB {r['worker_mib']:>10.0f}MB")
    small, large = results
    print(f"peak memory, {large['images']} vs {small['images']} images: "
          f"web x{large['web_mib'] / small['web_mib']:.2f}, "
          f"worker x{large['worker_mib'] / small['worker_mib']:.2f} (1.00 = flat)")


if __name__ == "__main__":
    main()
