"""The captioning core as plain ML code: vocabulary, the progressive pipeline, decoding, a real run.

The real run trains the merge model on the generated shapes captions (the Flickr8k-layout zip
the product ships as a built-in) with features computed from the pixels alone: a 3x3 grid of
colour histograms (27 colour bins per cell). The captions never enter the features, so a BLEU
above the most-common-caption baseline means the model learned to describe what it sees. A second
real run reads real pretrained features: the published quantized MobileNet's 512-d average pool,
computed here with the TFLite interpreter. Runs checkpoint every epoch: a cancelled one resumes where
it stopped, and the saved model is the best epoch's.
No Django, no Celery: a recording sink stands in for the worker's reporter.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jobs.ml.captioning import (
    END,
    MAX_CAPTION_LENGTH,
    PAD,
    START,
    TOKENISATION,
    ArrayFeatures,
    CaptionConfig,
    Captioner,
    _split_keys,
    batch_plan,
    build_merge_model,
    build_vocabulary,
    encode_captions,
    load_captioner,
    make_caption_dataset,
    train_captioner,
)
from jobs.ml.datasets.synthetic import make_shapes_captions_zip
from jobs.ml.progress import JobCancelled
from tests.real_models import EMBEDDING_TENSOR, INPUT_SIZE, QUANT_TFLITE
from tests.sinks import RecordingSink

# Keras 3's own .keras writer converts variables with np.array(); NumPy 2 flags that. Not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

ROOT = Path(__file__).resolve().parent.parent

# A small merge model that learns the shapes captions in under a CPU second per epoch (about 6 s in
# all on two quiet cores). Dropout is 0.2, not the product's 0.5: these 243 dense hand-made features carry
# little redundancy, and at 0.5 eight epochs leave the model well short of what it can learn.
SMALL = CaptionConfig(epochs=8, batch_size=256, learning_rate=5e-3, embedding_dim=64, units=64, dropout=0.2,
                      beam_width=3, early_stopping_patience=3, seed=0)

# Real features (the published MobileNet's 512-d pool) of this many generated pictures, captioned one
# way per scene (`plain`): with the built-in's random synonyms and word orders no caption matches the
# references' 4-grams, and a reader that gets every colour, shape, size and position right scores only
# 0.63-0.68 BLEU-4 decoding greedily (measured on 240-1,000 pictures). The merge model is narrower than
# the product's (units 64, not 256) so that it trains in about 25 s on two CPU cores; with identical
# references per picture, dropout only slows it (0.2 scored 0.867 where 0 scored 0.883 on 2,000
# pictures), and Adam 2e-3 keeps val_loss steadier than 5e-3. Measured with data seed 0: BLEU-4 greedy
# 0.904 (model seed 0) and 0.891 (seed 1) on 3,000 pictures; 0.877-0.894 over model seeds 0-2 on 2,000.
# Eight epochs, not 30: on 2,000 pictures greedy BLEU-4 passes 0.85 by epoch 3 and the lowest val_loss
# came at epoch 7, 6 and 5 (model seeds 0, 1, 2), where 30 epochs with patience 5 stopped at 12 with
# the same best epoch for seed 0. Scored at 8 epochs, patience 3: greedy 0.876 / 0.898 / 0.874, beam
# 0.878 / 0.903 / 0.874, baseline 0.125: two thirds of the epochs the 30-epoch setting ran (12).
# 1,000 pictures overfit (best 0.834-0.853) and a narrower model (units 32) is not faster per epoch.
REAL_IMAGES = 2000  # 3,000 gain little BLEU for half again the training time
REAL = CaptionConfig(epochs=8, batch_size=128, learning_rate=2e-3, embedding_dim=64, units=64, dropout=0.0,
                     beam_width=3, early_stopping_patience=3, seed=0)
REAL_BLEU4 = 0.85


# --- data -----------------------------------------------------------------------------------------

def colour_grid_features(image: Image.Image, grid: int = 3, levels: int = 3) -> np.ndarray:
    """A fixed function of the pixels: per grid cell, the share of pixels in each of levels^3 colour bins."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 256.0
    q = (pixels * levels).astype(np.int64)
    code = (q[..., 0] * levels + q[..., 1]) * levels + q[..., 2]
    side = code.shape[0] // grid
    cells = [code[i * side:(i + 1) * side, j * side:(j + 1) * side].ravel()
             for i in range(grid) for j in range(grid)]
    return 10.0 * np.concatenate([np.bincount(c, minlength=levels ** 3) / c.size for c in cells])


class MobileNetEmbedding:
    """A real pretrained extractor: the published quantized MobileNet v1 0.5's 512-d average pool of a picture.

    Fed as its model card says: raw uint8 RGB pixels resized to 160x160 (bilinear), no scaling. The pool
    is an inner tensor, read with every tensor preserved and dequantized with its (scale, zero point).
    """

    def __init__(self):
        import tensorflow as tf

        self.interpreter = tf.lite.Interpreter(model_path=str(QUANT_TFLITE), experimental_preserve_all_tensors=True)
        self.interpreter.allocate_tensors()
        self.pixels = self.interpreter.get_input_details()[0]["index"]
        detail = next(d for d in self.interpreter.get_tensor_details() if d["name"] == EMBEDDING_TENSOR)
        self.embedding, (self.scale, self.zero_point) = detail["index"], detail["quantization"]

    def __call__(self, image: Image.Image) -> np.ndarray:
        pixels = image.convert("RGB").resize((INPUT_SIZE, INPUT_SIZE), Image.BILINEAR)
        self.interpreter.set_tensor(self.pixels, np.asarray(pixels, dtype=np.uint8)[None])
        self.interpreter.invoke()
        quantized = self.interpreter.get_tensor(self.embedding).reshape(-1).astype(np.float32)
        return self.scale * (quantized - self.zero_point)


def read_shapes_captions(zip_path: Path, featurize=colour_grid_features) -> tuple[list[str], np.ndarray, dict, dict]:
    """(image keys, features, raw captions per key, splits) from a Flickr8k-layout zip."""
    keys, rows, captions, splits = [], [], {}, {}
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()

        def member(suffix: str) -> str:
            return next(n for n in names if n.endswith(suffix))

        for line in archive.read(member("Flickr8k.token.txt")).decode("utf-8").splitlines():
            image, _, caption = line.partition("\t")
            captions.setdefault(image.split("#")[0], []).append(caption)
        for split, stem in (("train", "train"), ("val", "dev"), ("test", "test")):
            splits[split] = archive.read(member(f"Flickr_8k.{stem}Images.txt")).decode("utf-8").split()
        for name in sorted(n for n in names if n.endswith(".jpg")):
            keys.append(name.rsplit("/", 1)[1])
            rows.append(featurize(Image.open(io.BytesIO(archive.read(name)))))
    return keys, np.stack(rows).astype(np.float32), captions, splits


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes-captions")
    keys, matrix, captions, splits = read_shapes_captions(
        make_shapes_captions_zip(root / "shapes.zip", n_images=240, size=64, seed=0))
    # Stored and read back as a read-only memory map, as the lead's FeatureSet hands them over.
    np.save(root / "features.npy", matrix)
    features = ArrayFeatures(keys, np.load(root / "features.npy", mmap_mode="r"))
    return {"features": features, "captions": captions, "splits": splits, "root": root}


@pytest.fixture(scope="session")
def real_shapes(tmp_path_factory):
    """Shapes captions with real features (the published MobileNet's), made once per session: about 1 ms a picture."""
    root = tmp_path_factory.mktemp("shapes-real-features")
    archive = make_shapes_captions_zip(root / "shapes.zip", n_images=REAL_IMAGES, size=64, seed=0, plain=True)
    keys, matrix, captions, splits = read_shapes_captions(archive, MobileNetEmbedding())
    return {"features": ArrayFeatures(keys, matrix), "captions": captions, "splits": splits, "root": root}


@pytest.fixture(scope="module")
def trained(shapes):
    sink = RecordingSink()
    workdir = shapes["root"] / "run"
    result = train_captioner(shapes["features"], shapes["captions"], shapes["splits"], SMALL, workdir, sink,
                             metadata={"backbone": {"name": "colour-grid", "dim": 243}})
    return {"result": result, "sink": sink, "workdir": workdir}


# --- model and vocabulary -------------------------------------------------------------------------

def test_merge_model_has_the_reference_parameter_count():
    # PRODUCT.md: 5,527,963 parameters at VGG16 fc2 features (4096), vocabulary 7,579, max length 34.
    model = build_merge_model(4096, 7579, 34)
    assert model.count_params() == 5_527_963
    assert [tuple(i.shape) for i in model.inputs] == [(None, 4096), (None, 34)]
    assert tuple(model.output.shape) == (None, 7579)
    assert model.get_layer("word_embedding").mask_zero


def test_vocabulary_drops_rare_words_and_knows_its_longest_caption():
    captions = {"a.jpg": ["A dog runs!", "The dog's ball."], "b.jpg": ["A red ball, 2 dogs", "a dog"]}
    # Cleaned: "dog runs", "the dogs ball", "red ball dogs", "dog" ("A"/"a" one letter, "2" a digit).
    every = build_vocabulary(captions, 1)
    assert every.index_to_word[:3] == [PAD, START, END]
    assert set(every.index_to_word[3:]) == {"dog", "runs", "the", "dogs", "ball", "red"}
    assert every.index_to_word[3:6] == ["ball", "dog", "dogs"]  # by count (2 each), then alphabetically
    assert every.longest == 5  # startseq the dogs ball endseq / startseq red ball dogs endseq

    common = build_vocabulary(captions, 2)
    assert common.index_to_word == [PAD, START, END, "ball", "dog", "dogs"]
    assert common.encode("The red dog") == [common.start, common.word_to_index["dog"], common.end]
    assert common.decode(common.encode("a ball, a dog") + [0, 0]) == ["ball", "dog"]
    assert common.longest == 4  # "red ball dogs" -> startseq ball dogs endseq
    assert len(common) == common.size == 6
    with pytest.raises(ValueError):
        build_vocabulary({}, 1)


def test_computed_max_length_is_capped(tmp_path):
    words = " ".join(f"word{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(60))
    vocab = build_vocabulary({"a.jpg": [words]}, 1)
    assert vocab.longest == 62
    # train_captioner uses min(longest, 40) when config.max_length is None.
    assert min(vocab.longest, MAX_CAPTION_LENGTH) == 40


# --- the progressive pipeline ---------------------------------------------------------------------

def test_pipeline_expands_captions_into_prefix_samples_batch_by_batch(tmp_path):
    captions = {"a.jpg": ["red circle left", "a red disc"], "b.jpg": ["blue square at the top"]}
    vocab = build_vocabulary(captions, 1)
    keys = ["a.jpg", "b.jpg"]
    matrix = np.arange(2 * 5, dtype=np.float32).reshape(2, 5)
    np.save(tmp_path / "f.npy", matrix)
    mapped = np.load(tmp_path / "f.npy", mmap_mode="r")  # read-only: the pipeline must only read it
    captions_set = encode_captions(keys, captions, vocab, 6, {"a.jpg": 0, "b.jpg": 1})
    # Tokens with startseq/endseq: 5, 4 ("red disc"), 7 -> truncated to 6. Samples: 4 + 3 + 5 = 12.
    assert captions_set.lengths.tolist() == [5, 4, 6]
    assert captions_set.n_samples == 12
    # What the pipeline keeps: the int token arrays, nothing per sample.
    assert captions_set.tokens.shape == (3, 6) and captions_set.tokens.dtype == np.int32

    ds = make_caption_dataset(mapped, captions_set, batch_size=5, shuffle=True, seed=1)
    assert int(ds.cardinality()) == 3  # ceil(12 / 5) batches, known before iterating

    def one_epoch(dataset):
        seen = []
        for inputs, targets in dataset:
            feats, words, targets = inputs["image_features"].numpy(), inputs["words"].numpy(), targets.numpy()
            assert feats.shape == (len(targets), 5) and words.shape[0] == len(targets)
            # Each batch is cut to its longest prefix: right-padded, and its last column is not all padding.
            assert words.shape[1] <= 6 and (words[:, -1] != 0).any()
            for f, w, t in zip(feats, words, targets, strict=True):
                seen.append((int(f[0]) // 5, tuple(int(v) for v in w) + (0,) * (6 - len(w)), int(t)))
        return seen

    first, second = one_epoch(ds), one_epoch(ds)
    expected = []
    for row, tokens in ((0, vocab.encode("red circle left")), (0, vocab.encode("a red disc")),
                        (1, vocab.encode("blue square at the top")[:6])):
        for i in range(1, len(tokens)):
            expected.append((row, tuple(tokens[:i] + [0] * (6 - i)), tokens[i]))
    assert sorted(first) == sorted(expected) == sorted(second)
    assert first != second  # a fresh order each epoch
    # The same seed gives the same order; the validation form sorts the samples by prefix length.
    again = make_caption_dataset(mapped, captions_set, batch_size=5, shuffle=True, seed=1)
    assert [t for _, y in again for t in y.numpy().tolist()] == [t for *_, t in first]
    ordered = make_caption_dataset(mapped, captions_set, batch_size=5)
    by_length = sorted(expected, key=lambda sample: sum(1 for v in sample[1] if v))  # stable
    assert one_epoch(ordered) == by_length
    # Training names the epoch: every pass of epoch 1 is the second pass above, however often it is read
    # (a resumed run draws the same batches as one that never stopped).
    epoch_one = make_caption_dataset(mapped, captions_set, batch_size=5, shuffle=True, seed=1, epoch=lambda: 1)
    assert one_epoch(epoch_one) == one_epoch(epoch_one) == second


def test_batches_group_alike_prefix_lengths_yet_cover_every_sample_once():
    captions = {f"{i}.jpg": [" ".join(["word"] * (1 + i % 9))] for i in range(60)}
    vocab = build_vocabulary(captions, 1)
    captions_set = encode_captions(list(captions), captions, vocab, 12, {k: i for i, k in enumerate(captions)})
    plan = batch_plan(captions_set, 8, shuffle=True, seed=0, epoch=0)
    ids = np.concatenate(plan)
    assert sorted(ids.tolist()) == list(range(captions_set.n_samples))
    assert [len(b) for b in plan].count(8) == len(plan) - 1  # only the last batch of the last pool is short
    # Batches are cut to their longest prefix: far fewer LSTM steps than max_length for every sample.
    steps = sum(len(b) * int(captions_set.prefix_lengths(b).max()) for b in plan)
    assert steps < 0.75 * captions_set.n_samples * 12
    next_epoch = batch_plan(captions_set, 8, shuffle=True, seed=0, epoch=1)
    assert [b.tolist() for b in next_epoch] != [b.tolist() for b in plan]


# --- decoding -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def random_captioner():
    """An untrained merge model on 2 words: greedy and beam search can be checked exhaustively."""
    vocab = build_vocabulary({"x": ["red blue"]}, 1)  # pad, startseq, endseq, blue, red
    model = build_merge_model(4, vocab.size, 4, embedding_dim=8, units=8, seed=3)
    # Larger output weights make the distributions peaked, so the searches really disagree.
    layer = model.get_layer("next_word")
    layer.set_weights([w * 8 for w in layer.get_weights()])
    return Captioner(model, vocab, 4)


def _exhaustive_best(captioner: Captioner, feature: np.ndarray) -> tuple[list[int], float]:
    """The highest sum of log probabilities over every caption the model can produce."""
    vocab, length = captioner.vocabulary, captioner.max_length
    best, best_score = None, -math.inf
    words = [i for i in range(vocab.size) if i not in (0, vocab.start)]
    for n in range(1, length):
        for seq in itertools.product(words, repeat=n):
            if vocab.end in seq[:-1] or (n < length - 1 and seq[-1] != vocab.end):
                continue  # endseq only last; shorter than the maximum only when it ends
            tokens = [vocab.start, *seq]
            score = 0.0
            for i in range(1, len(tokens)):
                prefix = np.zeros((1, length), np.int32)
                prefix[0, :i] = tokens[:i]
                score += captioner._log_probs(feature[None], prefix)[0, tokens[i]]
            if score > best_score:
                best, best_score = tokens, score
    return best, best_score


def test_beam_search_finds_the_best_caption_when_wide_enough(random_captioner):
    features = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32) * 3
    wide = random_captioner.beam_search(features, width=27)  # 3 choices x 3 steps: nothing is cut
    for feature, found in zip(features, wide, strict=True):
        best, _ = _exhaustive_best(random_captioner, feature)
        assert found[:len(best)] == best


def test_beam_width_one_is_greedy_and_batching_changes_nothing(random_captioner):
    features = np.random.default_rng(1).normal(size=(9, 4)).astype(np.float32) * 3
    greedy = random_captioner.greedy(features)
    assert random_captioner.beam_search(features, width=1) == greedy
    batch = random_captioner.caption_batch(features, beam_width=3)
    assert batch == [random_captioner.caption(f, beam_width=3) for f in features]
    assert random_captioner.caption_batch(features) == [random_captioner.caption(f) for f in features]
    assert all(START not in c and END not in c for c in batch)
    with pytest.raises(ValueError, match="4-value"):
        random_captioner.caption(np.zeros(5))


# --- a real run -----------------------------------------------------------------------------------

def test_training_beats_the_most_common_caption(trained):
    result = trained["result"]
    bleu = result.bleu
    print("BLEU", json.dumps(bleu), "baseline:", result.baseline_caption, "seconds:", result.seconds)
    # Measured here (data seed 0, seed 0, 2 CPU cores): BLEU-4 greedy 0.403, beam 0.469, baseline 0.100;
    # BLEU-1 greedy 0.700, baseline 0.289. Over other data and model seeds tried (1/0, 2/2) greedy
    # BLEU-4 was 0.36 and 0.35 against baselines of 0.18 and 0.06; over model seeds 0-5 on these data
    # 0.32-0.40: the margins below hold.
    assert bleu["baseline"]["bleu4"] < 0.15
    assert bleu["greedy"]["bleu4"] > 0.3
    assert bleu["greedy"]["bleu4"] > bleu["baseline"]["bleu4"] + 0.15
    assert bleu["greedy"]["bleu1"] > bleu["baseline"]["bleu1"] + 0.2
    history = result.history
    assert history[-1]["loss"] < 0.6 * history[0]["loss"]
    assert set(history[0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy"}
    assert result.best_epoch == min(history, key=lambda h: h["val_loss"])["epoch"]
    assert result.evaluated_on == "test"
    assert result.split_sizes == {"train": 168, "val": 36, "test": 36}


def test_beam_search_scores_are_sane(trained):
    result = trained["result"]
    for kind in ("greedy", "beam", "baseline"):
        scores = [result.bleu[kind][f"bleu{n}"] for n in range(1, 5)]
        assert all(0 < s <= 1 for s in scores), kind
        assert scores == sorted(scores, reverse=True), kind  # BLEU-1 >= BLEU-2 >= ... here
    assert result.bleu["beam"]["bleu4"] > result.bleu["baseline"]["bleu4"] + 0.15
    assert result.beam_width == 3
    assert len(result.gallery) == 12
    item = result.gallery[0]
    assert set(item) == {"key", "greedy", "beam", "references"}
    assert item["greedy"] and item["beam"] and len(item["references"]) == 5
    assert not {START, END} & set(item["beam"].split())


def test_result_record_and_progress(trained):
    result, sink = trained["result"], trained["sink"]
    assert result.params == result.summary["total_params"] > 0
    assert result.vocab_size == len(json.loads((trained["workdir"] / "metadata.json").read_text())["index_to_word"])
    assert result.max_length == 30  # the longest training caption, two shapes in the longest wording
    assert result.tokenisation == TOKENISATION
    assert result.device == sink.device and result.device.startswith("CPU")
    assert result.samples_per_epoch > 5 * 168
    assert [e for e, _ in sink.epochs] == [h["epoch"] for h in result.history]
    assert sink.fractions == sorted(sink.fractions) and sink.fractions[-1] == 1.0
    # Progress comes every compiled call (several batches each for a model this small), up to each epoch's last batch.
    steps = -(-result.samples_per_epoch // SMALL.batch_size)
    assert any(m.startswith(f"Epoch 1/8 · batch {steps}/{steps}") for m in sink.messages)
    assert any(" left" in m for m in sink.messages if m.startswith("Epoch"))
    assert "Scoring captions on the test images (greedy and beam search)" in sink.messages
    assert Path(result.model_path) == trained["workdir"] / "model.keras"


def test_reload_in_a_fresh_process_gives_the_same_captions(trained, shapes):
    result, workdir = trained["result"], trained["workdir"]
    key = result.gallery[0]["key"]
    feature = shapes["features"].rows([key])[0]
    np.save(workdir / "one.npy", feature)
    prefix = np.zeros((1, result.max_length), np.int32)
    prefix[0, 0] = 1  # startseq: the first word's probabilities check the weights themselves

    here = load_captioner(workdir)
    assert here.metadata["backbone"] == {"name": "colour-grid", "dim": 243}
    assert here.metadata["max_length"] == result.max_length and here.metadata["tokenisation"] == TOKENISATION
    expected = {"greedy": here.caption(feature), "beam": here.caption(feature, beam_width=3),
                "first": here.model.predict([feature[None], prefix], verbose=0)[0].tolist()}
    assert expected["greedy"] and expected["beam"]

    script = (
        "import json, sys, numpy as np\n"
        "from jobs.ml.captioning import load_captioner\n"
        "c = load_captioner(sys.argv[1])\n"
        "f = np.load(sys.argv[2])\n"
        "p = np.zeros((1, c.max_length), np.int32); p[0, 0] = c.vocabulary.start\n"
        "print(json.dumps({'greedy': c.caption(f), 'beam': c.caption(f, beam_width=3),\n"
        "                  'first': c.model.predict([f[None], p], verbose=0)[0].tolist(),\n"
        "                  'backbone': c.metadata['backbone']}))\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-c", script, str(workdir), str(workdir / "one.npy")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    there = json.loads(done.stdout.strip().splitlines()[-1])
    assert there["greedy"] == expected["greedy"]
    assert there["beam"] == expected["beam"]
    assert there["backbone"] == {"name": "colour-grid", "dim": 243}
    np.testing.assert_allclose(there["first"], expected["first"], rtol=1e-5, atol=1e-7)
    # The saved model holds the best epoch's weights, as used for the gallery.
    assert here.caption_batch(shapes["features"].rows([g["key"] for g in result.gallery])) == \
        [g["greedy"] for g in result.gallery]


def test_downloaded_model_file_is_self_describing(trained):
    captioner = load_captioner(trained["workdir"] / "model.keras", warm_up=False)
    assert captioner.metadata["index_to_word"][:3] == [PAD, START, END]
    assert captioner.metadata["backbone"]["name"] == "colour-grid"


def test_cancel_stops_training_and_bad_requests_fail_early(shapes, tmp_path):
    captions = shapes["captions"]
    splits = {name: keys[:6] for name, keys in shapes["splits"].items()}
    # The first progress report of the first epoch (after one compiled call of several batches) cancels.
    sink = RecordingSink(cancel_on="Epoch 1/3 · batch ")
    config = CaptionConfig(epochs=3, batch_size=8, embedding_dim=8, units=8)
    with pytest.raises(JobCancelled):
        train_captioner(shapes["features"], captions, splits, config, tmp_path / "cancel", sink)
    batch, steps = re.search(r"batch (\d+)/(\d+)", sink.messages[-1]).groups()
    assert int(batch) < int(steps)  # within the epoch
    assert not sink.epochs and not (tmp_path / "cancel" / "model.keras").exists()

    with pytest.raises(ValueError, match="no extracted features"):
        train_captioner(ArrayFeatures(["other.jpg"], np.zeros((1, 3))), captions, splits, config, tmp_path, sink)
    with pytest.raises(ValueError, match="training split"):
        train_captioner(shapes["features"], captions, {"train": ["missing.jpg"]}, config, tmp_path, sink)
    with pytest.raises(ValueError, match="beam width"):
        train_captioner(shapes["features"], captions, splits, CaptionConfig(beam_width=0), tmp_path, sink)


def test_missing_splits_fall_back_and_say_so(shapes, tmp_path):
    captions = {f"{i}.jpg": ["a caption"] for i in range(20)}
    keys = list(captions)
    train, val, test, where = _split_keys(captions, {"train": keys[:10], "val": keys[10:15], "test": keys[15:]}, 0)
    assert (len(train), len(val), len(test), where) == (10, 5, 5, "test")
    train, val, test, where = _split_keys(captions, {"train": keys[:10], "val": keys[10:15]}, 0)
    assert (len(train), len(val), test, where) == (10, 5, [], "validation")
    # No validation split: a tenth of the training images (at least one) is held out, never trained on;
    # the test split's only image has no captions, so scoring falls back to the held-out images.
    train, val, test, where = _split_keys(captions, {"train": keys, "test": ["uncaptioned.jpg"]}, 0)
    assert (len(train), len(val), test, where) == (18, 2, [], "held-out training images")
    assert not set(train) & set(val)
    # Keys without captions are ignored; duplicates count once.
    train, *_ = _split_keys({**captions, "empty.jpg": []}, {"train": keys[:3] + keys[:3] + ["empty.jpg"],
                                                             "val": keys[3:4]}, 0)
    assert train == keys[:3]

    # A whole run with the training split only: scored on the held-out images.
    splits = {"train": shapes["splits"]["train"][:12]}
    config = CaptionConfig(epochs=1, batch_size=64, embedding_dim=8, units=8, beam_width=2)
    result = train_captioner(shapes["features"], shapes["captions"], splits, config, tmp_path / "run", RecordingSink())
    assert result.evaluated_on == "held-out training images"
    assert result.split_sizes == {"train": 11, "val": 1, "test": 0}
    assert len(result.gallery) == 1 and set(result.bleu) == {"greedy", "beam", "baseline"}


# --- checkpoints, resuming and the best epoch ------------------------------------------------------

def _small_splits(shapes, train: int = 48, val: int = 12, test: int = 6) -> dict:
    return {name: keys[:size] for (name, keys), size in zip(shapes["splits"].items(), (train, val, test), strict=True)}


def test_a_stopped_run_resumes_from_its_last_finished_epoch(shapes, tmp_path):
    import keras

    splits = _small_splits(shapes)
    config = CaptionConfig(epochs=4, batch_size=64, learning_rate=5e-3, embedding_dim=16, units=16, dropout=0.2,
                           beam_width=2, early_stopping_patience=None, seed=1)
    workdir = tmp_path / "run"
    stopped = RecordingSink(cancel_on="Epoch 3/4")  # the user cancels during the third epoch
    with pytest.raises(JobCancelled):
        train_captioner(shapes["features"], shapes["captions"], splits, config, workdir, stopped)
    assert [e for e, _ in stopped.epochs] == [1, 2]
    state = json.loads((workdir / "state.json").read_text())
    assert state["epochs_done"] == 2 and [h["epoch"] for h in state["history"]] == [1, 2]
    assert not (workdir / "model.keras").exists()

    sink = RecordingSink()
    resumed = train_captioner(shapes["features"], shapes["captions"], splits, config, workdir, sink, resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    assert resumed.history[:2] == state["history"]
    assert [e for e, _ in sink.epochs] == [3, 4] and resumed.epochs_run == 2 and resumed.resumed_from == 2
    steps = -(-resumed.samples_per_epoch // config.batch_size)
    assert any(m.startswith(f"Epoch 3/4 · batch {steps}/{steps}") for m in sink.messages)
    assert not any(m.startswith(("Epoch 1/4", "Epoch 2/4")) for m in sink.messages)
    assert sink.fractions == sorted(sink.fractions) and sink.fractions[-1] == 1.0
    assert load_captioner(workdir, warm_up=False).vocabulary.index_to_word == state["index_to_word"]
    # The optimizer state came back: its step count went on from the first run's.
    assert int(keras.models.load_model(workdir / "checkpoint.keras").optimizer.iterations) == 4 * steps

    # Continuing is the same as never stopping: the same batches per epoch, the same weights and optimizer.
    whole = train_captioner(shapes["features"], shapes["captions"], splits, config, tmp_path / "whole",
                            RecordingSink())
    for ours, theirs in zip(resumed.history, whole.history, strict=True):
        assert ours == pytest.approx(theirs, rel=1e-4)

    # Resuming a finished run trains nothing; another model size cannot continue these weights and starts over.
    again = train_captioner(shapes["features"], shapes["captions"], splits, config, workdir, RecordingSink(),
                            resume=True)
    assert again.history == resumed.history and again.epochs_run == 0 and again.bleu == resumed.bleu
    wider = CaptionConfig(**{**asdict(config), "units": 24, "epochs": 1})
    fresh = train_captioner(shapes["features"], shapes["captions"], splits, wider, workdir, RecordingSink(),
                            resume=True)
    assert [h["epoch"] for h in fresh.history] == [1] and fresh.resumed_from == 0


def _loss_of_saved_model(workdir, features, captions, keys) -> float:
    """Mean next-word cross-entropy of the saved model on these images' captions, as Keras computes val_loss."""
    captioner = load_captioner(workdir, warm_up=False)
    row_of = {key: i for i, key in enumerate(features.keys)}
    samples = encode_captions(keys, captions, captioner.vocabulary, captioner.max_length, row_of)
    rows, prefixes, targets = samples.samples(np.arange(samples.n_samples))
    probs = captioner.model.predict([np.asarray(features.features)[rows], prefixes], verbose=0, batch_size=512)
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(targets)), targets], 1e-7, 1.0))))


def test_early_stopping_saves_the_best_epochs_weights(shapes, tmp_path):
    # Few training images, no dropout and a large learning rate: the model overfits within a few
    # epochs, so val_loss falls, then rises, and the last epoch is not the best one.
    splits = _small_splits(shapes, train=24, val=12, test=6)
    config = CaptionConfig(epochs=12, batch_size=32, learning_rate=0.02, embedding_dim=32, units=32, dropout=0.0,
                           beam_width=1, early_stopping_patience=3, seed=0)
    result = train_captioner(shapes["features"], shapes["captions"], splits, config, tmp_path / "run", RecordingSink())
    history = result.history
    best = min(history, key=lambda h: h["val_loss"])
    assert result.best_epoch == best["epoch"] and result.stopped_early
    # The last epoch scored clearly worse than the best (by far more than the tolerance below).
    assert len(history) == result.best_epoch + 3 and history[-1]["val_loss"] > best["val_loss"] + 0.005

    saved = _loss_of_saved_model(tmp_path / "run", shapes["features"], shapes["captions"], splits["val"])
    print("val_loss per epoch", [round(h["val_loss"], 4) for h in history], "saved model", round(saved, 4))
    # The saved (fixed-length) model scores exactly what the best epoch scored on trimmed batches.
    assert saved == pytest.approx(best["val_loss"], rel=1e-4)


# --- real features --------------------------------------------------------------------------------

def test_a_captioner_on_real_pretrained_features_describes_what_it_sees(real_shapes, tmp_path):
    result = train_captioner(real_shapes["features"], real_shapes["captions"], real_shapes["splits"], REAL,
                             tmp_path / "run", RecordingSink())
    bleu = result.bleu
    print("BLEU", json.dumps(bleu), "best epoch", result.best_epoch, "of", result.epochs_run,
          "samples/s", result.samples_per_second, "seconds", result.seconds)
    assert bleu["greedy"]["bleu4"] >= REAL_BLEU4
    assert bleu["greedy"]["bleu4"] > bleu["baseline"]["bleu4"] + 0.3
    assert bleu["beam"]["bleu4"] > bleu["baseline"]["bleu4"] + 0.3
    assert result.best_epoch == min(result.history, key=lambda h: h["val_loss"])["epoch"]
