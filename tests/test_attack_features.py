"""Cached features can never be attached to the wrong image (issue 11, item 11).

Two caption archives hold the same photos under permuted names: every (photo, captions) pair is
the same, so their content hashes are equal, but the name "a.png" means another photo in each.
Before, the feature cache was keyed by the content hash and its rows by path, so the second
user's job was served the first user's rows for the wrong photos. Now each layout gets its own
rows, and every row matches the photo under its name.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings

from jobs.ml.datasets.synthetic import make_shapes_captions_zip
from tests.api_helpers import launch, upload_backbone, upload_dataset
from tests.backbone_files import pixels_backbone
from tests.conftest import wait_for_job

pytestmark = pytest.mark.worker

FOLDER = "shapes-captions"


def permuted_copy(source: Path, target: Path) -> dict[str, str]:
    """The same archive with the image names rotated (captions and split lists follow their photos)."""
    with zipfile.ZipFile(source) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist() if not info.is_dir()}
    images = sorted(name.rsplit("/", 1)[1] for name in members if "/Images/" in name)
    renamed = dict(zip(images, images[1:] + images[:1], strict=True))
    with zipfile.ZipFile(target, "w") as out:
        for name, data in members.items():
            if "/Images/" in name:
                out.writestr(f"{FOLDER}/Images/{renamed[name.rsplit('/', 1)[1]]}", data)
            else:
                text = data.decode("utf-8")
                # Two passes through placeholders, so a rename never meets a name it already wrote.
                for i, old in enumerate(images):
                    text = text.replace(old, f"\0{i}\0")
                for i, old in enumerate(images):
                    text = text.replace(f"\0{i}\0", renamed[old])
                out.writestr(name, text.encode("utf-8"))
    return renamed


def stored_rows(cache: str) -> dict[str, np.ndarray]:
    import json

    folder = Path(settings.DATA_DIR) / "features" / cache
    keys = json.loads((folder / "index.json").read_text())["keys"]
    rows = np.load(folder / "features.npy")
    return dict(zip(keys, rows, strict=True))


def test_permuted_names_never_share_cached_rows(worker, alice_api, bob_api, tmp_path):
    original = make_shapes_captions_zip(tmp_path / "a.zip", n_images=24, size=32, seed=5)
    renamed = permuted_copy(original, tmp_path / "b.zip")
    mine = upload_dataset(alice_api, original, "captions", "mine")
    theirs = upload_dataset(bob_api, tmp_path / "b.zip", "captions", "theirs")
    assert mine["content_hash"] == theirs["content_hash"]  # the same data, by design

    def extract(client, dataset) -> dict:
        backbone = upload_backbone(client, pixels_backbone(tmp_path, size=32, block=8))
        job = wait_for_job(client, launch(client, {"kind": "extract_features", "dataset": dataset["id"],
                                                   "params": {"backbone": backbone["key"]}})["id"])
        assert job["status"] == "succeeded", job["error"]
        return job["result"]

    first, second = extract(alice_api, mine), extract(bob_api, theirs)
    assert second["reused"] is False and second["cache"] != first["cache"]

    # Every row is the features of the photo under that name: the same photo, the same row.
    rows_a, rows_b = stored_rows(first["cache"]), stored_rows(second["cache"])
    paths = {Path(key).name: key for key in rows_a}
    checked = 0
    for old, new in renamed.items():
        key_a = paths[old]
        key_b = next(key for key in rows_b if Path(key).name == new)
        np.testing.assert_allclose(rows_a[key_a], rows_b[key_b], rtol=1e-3, atol=1e-3)
        checked += 1
    assert checked == len(renamed) >= 20
    # And the rows differ where the names are the same but the photos are not.
    same_name = [name for name in renamed if name in paths]
    differing = sum(not np.allclose(rows_a[paths[n]], rows_b[next(k for k in rows_b if Path(k).name == n)])
                    for n in same_name)
    assert differing >= len(same_name) // 2

    # Deleting one dataset keeps the other's features.
    assert bob_api.delete(f"/api/datasets/{theirs['id']}/").status_code == 204
    assert (Path(settings.DATA_DIR) / "features" / first["cache"]).is_dir()
    assert not (Path(settings.DATA_DIR) / "features" / second["cache"]).exists()
