"""Real pretrained weights through the backbone path: each file is fed the way its authors meant.

The published quantized MobileNet (tests/data/pretrained) and a float twin built from its own
dequantized weights (tests/real_models.py) must name the sample photos right through VisionLab's
extractor, whatever convention the file uses; and where the file cannot say, the sanity check
must catch a wrong choice. Each of these failed on the code before issue 10, which pushed 0..255
floats through every quantized input and fed every float model raw 0..255.
"""

from __future__ import annotations

import numpy as np
import pytest

from jobs.ml import sanity
from jobs.ml.backbones import inspect_file, load_extractor, suggest_scaling
from jobs.ml.scaling import InputScaling
from jobs.ml.tflite_metadata import read_metadata
from tests.real_models import CAT, HOT_DOG, LOGITS_TENSOR, QUANT_TFLITE, float_tflite, labels, save_float_keras
from tests.tflite_files import with_metadata

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

OLD_WAY = InputScaling("mean_std", (0.0,), (1.0,))  # 0..255 floats as they are: what every file got before


def photos(size: int = 160) -> np.ndarray:
    from jobs.ml.predict import read_image

    return np.stack([read_image(path.read_bytes(), size, 3) for path in (CAT, HOT_DOG)])


def top1(backbone) -> list[str]:
    return [labels()[int(i)] for i in load_extractor(backbone)(photos()).argmax(axis=1)]


def test_the_quantized_model_gets_its_raw_pixels_and_names_both_photos():
    backbone = inspect_file(QUANT_TFLITE, output=LOGITS_TENSOR)
    assert backbone.scaling == InputScaling("raw")
    assert "quantized" in suggest_scaling(QUANT_TFLITE)[1]
    assert top1(backbone) == ["Egyptian cat", "hotdog, hot dog, red hot"]
    # The old feeding saturates every pixel, and the model sees something else entirely.
    wrong = top1(inspect_file(QUANT_TFLITE, output=LOGITS_TENSOR, scaling=OLD_WAY))
    assert "Egyptian cat" not in wrong and "hotdog, hot dog, red hot" not in wrong, wrong


def test_the_sanity_check_reads_the_models_own_labels_and_recognises_the_photos():
    backbone = inspect_file(QUANT_TFLITE)  # its own output: the final softmax
    assert read_metadata(QUANT_TFLITE).labels[286] == "Egyptian cat"
    report = sanity.check(backbone, labels=list(read_metadata(QUANT_TFLITE).labels))
    by_name = {photo["name"]: photo for photo in report["photos"]}
    assert by_name["cat"]["top5"][0]["label"] == "Egyptian cat" and by_name["cat"]["recognised"]
    assert by_name["hot dog"]["top5"][0]["label"].startswith("hotdog") and by_name["hot dog"]["recognised"]
    assert (report["classifier"], report["recognised"], report["known"], report["suggested"]) == (True, 2, 2, None)
    assert any("recognises the sample photos" in m for m in report["messages"])
    assert len(report["alternatives"]) == 5 and report["alternatives"][0]["scaling"] == {"kind": "raw"}


def test_a_float_model_with_tflite_metadata_is_fed_the_range_the_metadata_names(tmp_path):
    plain = float_tflite(tmp_path, output="logits")
    assert suggest_scaling(plain)[0] == InputScaling("raw")  # the file does not say: raw, and the check warns
    described = tmp_path / "described.tflite"
    described.write_bytes(with_metadata(plain.read_bytes(), mean=[127.5], std=[127.5]))
    scaling, why = suggest_scaling(described)
    assert scaling == InputScaling("symmetric") and "metadata" in why
    backbone = inspect_file(described)
    assert top1(backbone) == ["Egyptian cat", "hotdog, hot dog, red hot"]
    assert sanity.check(backbone)["status"] == "ok"


def test_a_float_model_fed_the_wrong_range_is_caught_and_the_right_one_suggested(tmp_path):
    model = save_float_keras(tmp_path, output="logits")
    chosen = inspect_file(model)  # a Keras file: raw by default, and this one wants -1..1
    assert chosen.scaling == InputScaling("raw")
    report = sanity.check(chosen)
    assert report["status"] == "warning" and report["recognised"] == 0
    assert any("recognises none of the sample photos" in m for m in report["messages"]), report["messages"]
    assert report["suggested"] is not None
    suggested = InputScaling.from_dict(report["suggested"])
    right = inspect_file(model, scaling=suggested)
    assert top1(right) == ["Egyptian cat", "hotdog, hot dog, red hot"]
    assert sanity.check(right)["status"] == "ok"
    assert top1(inspect_file(model, scaling=InputScaling("symmetric"))) == ["Egyptian cat", "hotdog, hot dog, red hot"]


def test_an_embedding_model_without_a_classifier_is_judged_by_how_its_features_differ(tmp_path):
    model = save_float_keras(tmp_path, output="embedding", fmt="h5")
    wrong = sanity.check(inspect_file(model))
    assert wrong["classifier"] is False and wrong["status"] == "warning"
    assert wrong["suggested"] is not None and wrong["suggested"]["kind"] != "raw"
    assert any("differ between photos far more" in m for m in wrong["messages"]), wrong["messages"]
    right = sanity.check(inspect_file(model, scaling=InputScaling("symmetric")))
    assert right["status"] == "ok" and right["suggested"] is None and right["spread"] > 2 * wrong["spread"]


def test_the_owners_photos_join_the_check(tmp_path):
    from PIL import Image

    extra = []
    for i, colour in enumerate(((200, 30, 30), (30, 200, 30), (30, 30, 200))):
        path = tmp_path / f"mine-{i}.png"
        Image.new("RGB", (64, 64), colour).save(path)
        extra.append((path.name, path))
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    report = sanity.check(inspect_file(QUANT_TFLITE, output="MobilenetV1/Logits/AvgPool_1a/AvgPool"),
                          [*extra, ("broken.jpg", tmp_path / "broken.jpg")])
    names = [photo["name"] for photo in report["photos"]]
    assert names[:2] == ["cat", "hot dog"] and names[-3:] == ["mine-0.png", "mine-1.png", "mine-2.png"]
    assert "broken.jpg" not in names
