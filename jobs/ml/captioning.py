"""Image captioning with the merge model: the work behind workflow 4 (PRODUCT.md, seed 004 Tasks 3-5).

Captions are cleaned (`clean_caption`), wrapped in `startseq ... endseq` and turned into word
indices; the vocabulary and the maximum length come from the training captions only. The merge
model reads an image's feature vector (extracted once by a backbone, workflow 3) and the words
so far, and predicts the next word:

    image features -> Dropout -> Dense(256, relu) ─┐
                                                   add -> Dense(256, relu) -> Dense(vocab, softmax)
    words -> Embedding(vocab, 256, mask_zero) -> Dropout -> LSTM(256) ─┘

Training is fed progressively: every (image, caption) pair expands into one sample per word
(features, the caption's first i words, word i+1), but those samples are made batch by batch
from int token arrays and the (possibly memory-mapped) feature matrix, so memory does not grow
with the number of samples. A batch gathers samples of alike prefix lengths and is cut to its
longest prefix, so the LSTM runs the steps the words need rather than `max_length` every time
(the saved model takes prefixes padded to `max_length`, with the same weights and outputs).
Every epoch checkpoints the whole training state (model, optimizer, history, early-stopping
state, vocabulary), so a stopped run resumes from its last finished epoch; the epoch with the
lowest val_loss gives the saved weights. Captions are then generated greedily and with beam
search on the test images and scored with corpus BLEU-1..4 against all references, next to a
baseline that always says the most common training caption.

Progress, per-epoch metrics and the device go to a `ProgressSink`; a sink that raises
`JobCancelled` stops the work at the next batch. No Django here: the same code runs from a script.
"""

from __future__ import annotations

import itertools
import json
import math
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import keras
import numpy as np
import tensorflow as tf

from jobs.ml import zoo
from jobs.ml.artifacts import EMBEDDED_METADATA, METADATA_FILE, MODEL_FILE, save_model
from jobs.ml.bleu import corpus_bleu
from jobs.ml.config import CaptionConfig
from jobs.ml.datasets.captions import clean_caption
from jobs.ml.progress import ProgressSink
from jobs.ml.training import (
    ASSUMED_FLOPS_PER_SECOND,
    CHECKPOINT_FILE,
    MAX_STEPS_PER_EXECUTION,
    STATE_FILE,
    TARGET_CALL_SECONDS,
    EpochCallback,
    device_plan,
    forget_state,
)

PAD, START, END = "<pad>", "startseq", "endseq"
MAX_CAPTION_LENGTH = 40  # tokens, startseq and endseq included: the cap on a computed max_length

TOKENISATION = ("clean_caption (lowercase; apostrophes dropped, other punctuation and symbols split words; "
                "tokens of one letter or with digits dropped); whitespace split; startseq/endseq excluded "
                "from scoring; references keep words outside the vocabulary")

ARCHITECTURE = "merge"

# Shares of the job's progress bar: preparing, the epochs, greedy scoring, beam scoring, saving.
TRAIN_START, TRAIN_END, GREEDY_END, BEAM_END = 0.02, 0.85, 0.89, 0.97

METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
GALLERY_SIZE = 12
VALIDATION_SHARE = 0.1  # of the training images, held out when the validation split is empty
DECODE_ROWS = 256  # model rows (images x beams) per decoding call

# The merge model's words input is right-padded (post): its mask is then cuDNN-compatible on a GPU.
PADDING = "post"

# What must match for a checkpoint to be continued rather than started over (and the feature size).
RESUME_KEYS = ("min_word_count", "max_length", "embedding_dim", "units", "dropout", "learning_rate", "seed")


# --- configuration and result ---------------------------------------------------------------------

@dataclass
class CaptionResult:
    history: list[dict]  # per epoch {"epoch", "loss", "accuracy", "val_loss", "val_accuracy"} (next-word accuracy)
    best_epoch: int  # 1-based epoch with the lowest val_loss; its weights are the ones kept
    bleu: dict  # {"greedy": {"bleu1".."bleu4"}, "beam": {...}, "baseline": {...}}
    baseline_caption: str  # the most common cleaned training caption
    gallery: list[dict]  # up to 12 evaluated images: {"key", "greedy", "beam", "references": [raw captions]}
    vocab_size: int  # including the padding index 0 (the Embedding's input_dim)
    max_length: int
    tokenisation: str
    summary: dict  # zoo.summarize(model)
    params: int
    model_path: str  # workdir / "model.keras"
    device: str
    seconds: float
    evaluated_on: str = "test"  # "test", "validation", or "held-out training images" (no val and no test split)
    beam_width: int = 3
    stopped_early: bool = False
    epochs_run: int = 0  # epochs trained by this call (fewer than the history after a resume)
    resumed_from: int = 0  # epochs found in the checkpoint this call continued (0: a fresh start)
    samples_per_epoch: int = 0  # (image, prefix, next word) training samples
    samples_per_second: float = 0.0  # training throughput (training batches only, validation excluded)
    split_sizes: dict = field(default_factory=dict)  # images per split as used: {"train", "val", "test"}
    model_epoch: int = 0  # the epoch whose weights were scored and saved: best_epoch unless they were lost


# --- features -------------------------------------------------------------------------------------

class FeatureMatrix(Protocol):
    """What training needs from stored features (jobs.ml.features.FeatureSet satisfies it)."""

    keys: Sequence[str]
    features: np.ndarray  # (len(keys), D); may be a read-only np.memmap

    def rows(self, keys: Sequence[str]) -> np.ndarray: ...


class ArrayFeatures:
    """Features held in an array, one row per key: for scripts and tests."""

    def __init__(self, keys: Sequence[str], features: np.ndarray):
        self.keys = list(keys)
        self.features = np.asarray(features)
        if self.features.ndim != 2 or len(self.keys) != len(self.features):
            raise ValueError("ArrayFeatures needs a 2-D array with one row per key.")
        self._index = {key: i for i, key in enumerate(self.keys)}

    def rows(self, keys: Sequence[str]) -> np.ndarray:
        return self.features[[self._index[key] for key in keys]]


def _feature_rows(features: FeatureMatrix, keys: Sequence[str]) -> tuple[np.ndarray, dict[str, int]]:
    """The feature matrix (not copied) and the row of each needed key; a clear error for missing ones."""
    matrix = features.features
    if matrix.ndim != 2:
        raise ValueError(f"Image features must be one vector per image; these have the shape {matrix.shape}.")
    index = {key: i for i, key in enumerate(features.keys)}
    missing = [key for key in keys if key not in index]
    if missing:
        raise ValueError(f"{len(missing)} captioned images have no extracted features (the first is "
                         f"{missing[0]!r}); extract the features for this dataset again.")
    return matrix, {key: index[key] for key in keys}


# --- vocabulary -----------------------------------------------------------------------------------

@dataclass
class Vocabulary:
    """Word <-> index. Index 0 is padding, then startseq and endseq, then words by frequency."""

    index_to_word: list[str]
    longest: int = 0  # the longest encoded training caption in tokens (startseq/endseq included)
    word_to_index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self):
        if len(self.index_to_word) < 3 or self.index_to_word[0] != PAD or not {START, END} <= set(self.index_to_word):
            raise ValueError("A caption vocabulary starts with the padding token and holds startseq and endseq.")
        self.word_to_index = {word: i for i, word in enumerate(self.index_to_word)}

    @property
    def size(self) -> int:
        return len(self.index_to_word)

    def __len__(self) -> int:
        return self.size

    @property
    def start(self) -> int:
        return self.word_to_index[START]

    @property
    def end(self) -> int:
        return self.word_to_index[END]

    def encode(self, caption: str) -> list[int]:
        """A raw caption -> [startseq, its cleaned in-vocabulary words..., endseq] as indices."""
        words = (self.word_to_index.get(w) for w in clean_caption(caption).split() if w not in (START, END))
        return [self.start, *(i for i in words if i is not None), self.end]

    def decode(self, indices: Sequence[int]) -> list[str]:
        """Indices -> words, without padding and startseq, stopping at endseq."""
        words = []
        for i in indices:
            i = int(i)
            if i == self.end:
                break
            if i not in (0, self.start):
                words.append(self.index_to_word[i])
        return words


def build_vocabulary(captions_by_key: Mapping[str, Sequence[str]], min_word_count: int = 1) -> Vocabulary:
    """The vocabulary of these (training) captions: cleaned words seen at least `min_word_count` times.

    Order: padding (0), startseq, endseq, then words from the most to the least frequent (ties
    alphabetically), so the same captions always give the same indices. `longest` is the
    longest caption once encoded (rare words dropped, startseq/endseq counted).
    """
    if min_word_count < 1:
        raise ValueError("The minimum word count is a whole number of at least 1.")
    counts: Counter = Counter()
    n_captions = 0
    for captions in captions_by_key.values():
        for caption in captions:
            counts.update(w for w in clean_caption(caption).split() if w not in (START, END, PAD))
            n_captions += 1
    if not n_captions:
        raise ValueError("There are no training captions to build a vocabulary from.")
    words = sorted((w for w, c in counts.items() if c >= min_word_count), key=lambda w: (-counts[w], w))
    vocab = Vocabulary([PAD, START, END, *words])
    vocab.longest = max(len(vocab.encode(c)) for captions in captions_by_key.values() for c in captions)
    return vocab


# --- the progressive pipeline ---------------------------------------------------------------------

# Training batches hold samples of alike prefix lengths, each batch cut to its longest prefix, so
# the LSTM runs about as many steps as the words a batch has rather than max_length (30-40) each
# time. A pool of this many batches of shuffled samples is sorted by prefix length and cut into
# batches, whose order is shuffled again: every epoch still sees every sample once in a fresh
# order, and a batch still mixes images and captions. Larger pools are faster and learn less per
# epoch, as batches of one length are less varied. Measured on 2 CPU cores, with real MobileNet
# features of 1,000 shapes pictures at the reference width (units 256, batch 128), pools of
# 1 / 2 / 4 batches trained 1,591 / 2,538 / 3,278 samples/s (the plain model.fit script: about
# 1,000) with val_loss after epoch 1 of 0.890 / 0.907 / 0.933; with the tests' small model (colour
# features of 240 pictures, units 64, batch 256, 8 epochs, six seeds) best val_loss averaged
# 0.936 / 0.936 / 0.961 (0.930 with unsorted, untrimmed batches). Two keeps the learning and most
# of the speed.
POOL_BATCHES = 2


@dataclass
class CaptionSet:
    """Encoded captions of one split as int arrays: all the pipeline keeps besides the feature matrix.

    A caption of n tokens gives n - 1 samples: positions 1..n-1 are predicted from the tokens
    before them. Sample ids enumerate them caption by caption; `offsets[c]` is the first id of
    caption c, so a batch of ids is turned into samples with a search and a gather.
    """

    tokens: np.ndarray  # (n_captions, max_length) int32: startseq ... endseq, 0-padded on the right
    lengths: np.ndarray  # (n_captions,) int32 tokens per caption, at most max_length
    image_rows: np.ndarray  # (n_captions,) int64: row of the caption's image in the feature matrix
    offsets: np.ndarray  # (n_captions + 1,) int64: cumulative sample counts

    @property
    def n_samples(self) -> int:
        return int(self.offsets[-1])

    @property
    def max_length(self) -> int:
        return int(self.tokens.shape[1])

    def _locate(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(caption index, position of the word to predict = prefix length) of each sample id."""
        ids = np.asarray(ids, dtype=np.int64)
        caption = np.searchsorted(self.offsets, ids, side="right") - 1
        return caption, ids - self.offsets[caption] + 1

    def prefix_lengths(self, ids: np.ndarray) -> np.ndarray:
        return self._locate(ids)[1]

    def samples(self, ids: np.ndarray, trim: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sample ids -> (feature rows, prefixes int32, next words int32).

        Prefixes are right-padded to max_length, or with `trim` to the longest prefix among these
        ids: the merge model's masked LSTM gives the same output either way, for fewer steps.
        """
        caption, position = self._locate(ids)
        width = int(position.max(initial=1)) if trim else self.max_length
        rows = self.tokens[caption, :width]
        prefixes = np.where(np.arange(width)[None, :] < position[:, None], rows, 0).astype(np.int32)
        targets = self.tokens[caption, position].astype(np.int32)
        return self.image_rows[caption], prefixes, targets


def encode_captions(keys: Sequence[str], captions: Mapping[str, Sequence[str]], vocab: Vocabulary,
                    max_length: int, row_of: Mapping[str, int]) -> CaptionSet:
    """Every caption of `keys`, encoded and truncated to `max_length` tokens."""
    encoded = [(row_of[key], vocab.encode(c)[:max_length]) for key in keys for c in captions[key]]
    tokens = np.zeros((len(encoded), max_length), dtype=np.int32)
    for i, (_, ids) in enumerate(encoded):
        tokens[i, :len(ids)] = ids
    lengths = np.array([len(ids) for _, ids in encoded], dtype=np.int32)
    offsets = np.concatenate([[0], np.cumsum(np.maximum(lengths - 1, 0), dtype=np.int64)])
    return CaptionSet(tokens, lengths, np.array([row for row, _ in encoded], dtype=np.int64), offsets)


def steps_per_epoch(captions: CaptionSet, batch_size: int) -> int:
    return math.ceil(captions.n_samples / batch_size)


def batch_plan(captions: CaptionSet, batch_size: int, *, shuffle: bool, seed: int = 0,
               epoch: int = 0) -> list[np.ndarray]:
    """The sample ids of each batch of one pass, batches of alike prefix lengths (see POOL_BATCHES).

    Shuffled passes draw from (seed, epoch), so epoch e has the same batches in a run that was
    resumed as in one that was not. Unshuffled (validation) passes sort all samples by length.
    Costs one int64 per sample while the pass runs.
    """
    n = captions.n_samples
    if shuffle:
        rng = np.random.default_rng([seed, epoch])
        ids = rng.permutation(n)
        pool = batch_size * POOL_BATCHES
    else:
        ids, pool = np.arange(n), max(n, 1)
    for start in range(0, n, pool):
        chunk = ids[start:start + pool]
        ids[start:start + pool] = chunk[np.argsort(captions.prefix_lengths(chunk), kind="stable")]
    batches = [ids[start:start + batch_size] for start in range(0, n, batch_size)]
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def make_caption_dataset(matrix: np.ndarray, captions: CaptionSet, batch_size: int, *, shuffle: bool = False,
                         seed: int = 0, epoch: Callable[[], int] | None = None) -> tf.data.Dataset:
    """Batches of ({"image_features", "words"}, next word) made on the fly, prefetched.

    Each pass follows `batch_plan` (the pass's epoch is `epoch()` when given, else passes count
    up from 0), builds each batch from the token arrays with a few vectorised numpy calls, its
    prefixes cut to the batch's longest one, and reads only that batch's feature rows from
    `matrix` (each row once, in file order, which is what a memory-mapped matrix wants). Memory
    besides the feature matrix: the int token arrays, one int per sample for the pass's order,
    and the batches in flight. The dataset knows its length (the number of batches).
    """
    n, dim = captions.n_samples, int(matrix.shape[1])
    if n == 0:
        raise ValueError("There are no caption words to learn from.")
    passes = itertools.count()

    def batches():
        pass_epoch = epoch() if epoch is not None else next(passes)
        for ids in batch_plan(captions, batch_size, shuffle=shuffle, seed=seed, epoch=pass_epoch):
            rows, prefixes, targets = captions.samples(ids, trim=True)
            unique, inverse = np.unique(rows, return_inverse=True)
            features = np.asarray(matrix[unique], dtype=np.float32)[inverse]
            yield {"image_features": features, "words": prefixes}, targets

    signature = ({"image_features": tf.TensorSpec((None, dim), tf.float32),
                  "words": tf.TensorSpec((None, None), tf.int32)},
                 tf.TensorSpec((None,), tf.int32))
    ds = tf.data.Dataset.from_generator(batches, output_signature=signature)
    ds = ds.apply(tf.data.experimental.assert_cardinality(steps_per_epoch(captions, batch_size)))
    return ds.prefetch(tf.data.AUTOTUNE)


# --- the model ------------------------------------------------------------------------------------

def build_merge_model(feature_dim: int, vocab_size: int, max_length: int | None, embedding_dim: int = 256,
                      units: int = 256, dropout: float = 0.5, seed: int = 0) -> keras.Model:
    """The merge captioning model (stock Keras layers only: a saved file reloads without custom objects).

    Inputs "image_features" (feature_dim floats) and "words" (max_length ints, 0 = padding);
    output: the next word's probabilities over the vocabulary. Kernels are seeded per layer.
    `max_length` None takes prefixes of any length: the model training runs on trimmed batches;
    its weights are the same list as the fixed-length model's.
    """
    if min(feature_dim, vocab_size, max_length or 1, embedding_dim, units) < 1 or not 0 <= dropout < 1:
        raise ValueError("The caption model needs positive sizes and a dropout rate in [0, 1).")

    def init(offset: int) -> dict:
        return {"kernel_initializer": keras.initializers.GlorotUniform(seed=seed + offset)}

    image = keras.Input((feature_dim,), name="image_features")
    words = keras.Input((max_length,), dtype="int32", name="words")
    x = keras.layers.Dropout(dropout, seed=seed, name="image_dropout")(image)
    x = keras.layers.Dense(units, activation="relu", name="image_dense", **init(0))(x)
    embeddings = keras.initializers.RandomUniform(-0.05, 0.05, seed=seed + 1)
    y = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True, embeddings_initializer=embeddings,
                               name="word_embedding")(words)
    y = keras.layers.Dropout(dropout, seed=seed + 1, name="word_dropout")(y)
    y = keras.layers.LSTM(units, name="word_lstm", **init(2),
                          recurrent_initializer=keras.initializers.Orthogonal(seed=seed + 3))(y)
    z = keras.layers.Add(name="merge")([x, y])
    z = keras.layers.Dense(units, activation="relu", name="decoder_dense", **init(4))(z)
    out = keras.layers.Dense(vocab_size, activation="softmax", dtype="float32", name="next_word", **init(5))(z)
    return keras.Model([image, words], out, name="merge_captioner")


# --- generating captions --------------------------------------------------------------------------

class Captioner:
    """A trained merge model with its vocabulary: image feature vectors in, captions out."""

    def __init__(self, model: keras.Model, vocabulary: Vocabulary, max_length: int, metadata: dict | None = None):
        self.model, self.vocabulary, self.max_length = model, vocabulary, int(max_length)
        self.feature_dim = int(model.inputs[0].shape[-1])
        self.metadata = dict(metadata or {})
        self._predict = tf.function(
            lambda f, w: model({"image_features": f, "words": w}, training=False),
            input_signature=[tf.TensorSpec((None, self.feature_dim), tf.float32),
                             tf.TensorSpec((None, self.max_length), tf.int32)])
        self._banned = np.array([0, vocabulary.start])  # never generated: padding and startseq

    def warm_up(self) -> None:
        """Trace the decoding step now, so the first real caption is as fast as the others."""
        self._probs(np.zeros((1, self.feature_dim), np.float32), np.zeros((1, self.max_length), np.int32))

    def _probs(self, features: np.ndarray, words: np.ndarray) -> np.ndarray:
        """Next-word probabilities (rows, vocab); padding and startseq get -1 so they never rank first."""
        probs = self._predict(tf.constant(features, tf.float32), tf.constant(words, tf.int32)).numpy()
        probs[:, self._banned] = -1.0
        return probs

    @staticmethod
    def _log(probs: np.ndarray) -> np.ndarray:
        """Log probabilities in float64; banned words (-1) are -inf, underflowed ones very negative."""
        probs = probs.astype(np.float64)
        return np.where(probs < 0, -np.inf, np.log(np.maximum(probs, 1e-30)))

    def _log_probs(self, features: np.ndarray, words: np.ndarray) -> np.ndarray:
        return self._log(self._probs(features, words))

    def _check(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.feature_dim:
            raise ValueError(f"This caption model reads {self.feature_dim}-value image features; got an array of "
                             f"shape {features.shape}. Extract them with the model's backbone.")
        return features

    def greedy(self, features: np.ndarray) -> list[list[int]]:
        """The most probable next word each time, for a batch of images at once."""
        features = self._check(features)
        n, length = len(features), self.max_length
        words = np.zeros((n, length), dtype=np.int32)
        words[:, 0] = self.vocabulary.start
        done = np.zeros(n, dtype=bool)
        for t in range(1, length):
            active = np.flatnonzero(~done)
            if not active.size:
                break
            best = self._probs(features[active], words[active]).argmax(axis=1)
            words[active, t] = best
            done[active[best == self.vocabulary.end]] = True
        return [list(row) for row in words]

    def beam_search(self, features: np.ndarray, width: int) -> list[list[int]]:
        """Beam search for a batch of images; the beams of all images go through the model together.

        A hypothesis scores the sum of its words' log probabilities. Each step every unfinished
        beam is extended by every word, and the `width` best of those extensions and of the
        finished hypotheses (which compete unchanged) make the next beams; only a beam's own
        `width` best words can be among them, so only those are ranked. A hypothesis ends at
        endseq or at max_length. Since log probabilities are at most 0, an unfinished beam that
        already scores no better than a finished one of its image can never win: it is dropped,
        and an image is done when none is left.
        """
        features = self._check(features)
        if width < 1:
            raise ValueError("The beam width is a whole number of at least 1.")
        n, length, k = len(features), self.max_length, int(width)
        per_beam = min(k, self.vocabulary.size)  # candidate words kept per beam
        seqs = np.zeros((n, k, length), dtype=np.int32)
        seqs[:, :, 0] = self.vocabulary.start
        scores = np.full((n, k), -np.inf)
        scores[:, 0] = 0.0
        done = np.zeros((n, k), dtype=bool)
        images = np.arange(n)[:, None]
        for t in range(1, length):
            best_done = np.where(done, scores, -np.inf).max(axis=1)
            alive = ~done & (scores > best_done[:, None])
            if not alive.any():
                break
            image_idx, beam_idx = np.nonzero(alive)
            probs = self._probs(features[image_idx], seqs[image_idx, beam_idx])
            top_words = np.argpartition(-probs, per_beam - 1, axis=1)[:, :per_beam]
            ext_scores = np.full((n, k, per_beam), -np.inf)
            ext_scores[image_idx, beam_idx] = (scores[image_idx, beam_idx, None]
                                               + self._log(np.take_along_axis(probs, top_words, 1)))
            ext_words = np.zeros((n, k, per_beam), dtype=np.int32)
            ext_words[image_idx, beam_idx] = top_words
            pool = np.concatenate([np.where(done, scores, -np.inf), ext_scores.reshape(n, -1)], axis=1)
            top = np.argsort(-pool, axis=1, kind="stable")[:, :k]
            new_scores = np.take_along_axis(pool, top, 1)
            finished = top < k
            extension = np.maximum(top - k, 0)
            source = np.where(finished, top, extension // per_beam)
            word = np.where(finished, 0, np.take_along_axis(ext_words.reshape(n, -1), extension, 1))
            seqs = seqs[images, source]
            seqs[:, :, t] = np.where(finished, seqs[:, :, t], word)
            done = np.isfinite(new_scores) & (finished | (word == self.vocabulary.end))
            scores = new_scores
        best = scores.argmax(axis=1)
        return [list(seqs[i, best[i]]) for i in range(n)]

    def caption_batch(self, features: np.ndarray, beam_width: int = 1,
                      on_progress: Callable[[int, int], None] | None = None) -> list[str]:
        """Captions for (N, D) feature vectors; greedy when beam_width is 1.

        Images go through in chunks; `on_progress(done, total)` is called after each one.
        """
        features = self._check(features)
        chunk = max(1, DECODE_ROWS // max(1, beam_width))
        captions: list[str] = []
        for start in range(0, len(features), chunk):
            part = features[start:start + chunk]
            seqs = self.greedy(part) if beam_width == 1 else self.beam_search(part, beam_width)
            captions += [" ".join(self.vocabulary.decode(seq)) for seq in seqs]
            if on_progress is not None:
                on_progress(len(captions), len(features))
        return captions

    def caption(self, features: np.ndarray, beam_width: int = 1) -> str:
        """One image's feature vector (D,) -> a caption in plain words."""
        features = np.asarray(features, dtype=np.float32)
        if features.ndim == 2 and features.shape[0] == 1:
            features = features[0]
        if features.ndim != 1:
            raise ValueError(f"caption() takes one image's feature vector; got an array of shape {features.shape}.")
        return self.caption_batch(features[None, :], beam_width)[0]


def load_captioner(model_dir: Path, warm_up: bool = True) -> Captioner:
    """The captioner saved by `train_captioner` in `model_dir` (or a downloaded model.keras file).

    Reads `metadata.json` beside the model, or the copy inside the .keras archive when given
    the file itself. With `warm_up`, the decoding step is traced before returning.
    """
    path = Path(model_dir)
    if path.is_dir():
        model_file = path / MODEL_FILE
        metadata = json.loads((path / METADATA_FILE).read_text(encoding="utf-8"))
    else:
        model_file = path
        with zipfile.ZipFile(path) as archive:
            metadata = json.loads(archive.read(EMBEDDED_METADATA).decode("utf-8"))
    if metadata.get("architecture") != ARCHITECTURE or "index_to_word" not in metadata:
        raise ValueError(f"{path} does not hold a VisionLab caption model.")
    model = keras.models.load_model(model_file, compile=False)
    captioner = Captioner(model, Vocabulary(list(metadata["index_to_word"])), metadata["max_length"], metadata)
    if warm_up:
        captioner.warm_up()
    return captioner


# --- checkpoints ----------------------------------------------------------------------------------

def _read_state(workdir: Path, config: CaptionConfig, feature_dim: int) -> dict | None:
    """The saved training state when it exists and can be continued by this run, else None."""
    try:
        state = json.loads((workdir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (workdir / CHECKPOINT_FILE).exists() or "index_to_word" not in state:
        return None
    saved = state.get("config", {})
    if state.get("feature_dim") != feature_dim or any(saved.get(k) != getattr(config, k) for k in RESUME_KEYS):
        return None  # other features or another model: its weights cannot continue
    return state


def _seed_states(model: keras.Model) -> list:
    """Where the dropout layers' random streams are: `model.save` leaves them out, and a resumed run
    that starts them over draws other masks than a run that never stopped."""
    return [v for v in model.non_trainable_variables if v.name == "seed_generator_state"]


def _load_checkpoint(workdir: Path, state: dict) -> keras.Model:
    """The checkpointed model, compiled with its optimizer state, its dropout streams where they were."""
    model = keras.models.load_model(workdir / CHECKPOINT_FILE)
    for variable, value in zip(_seed_states(model), state.get("seed_states", []), strict=False):
        variable.assign(np.asarray(value, dtype=variable.dtype))
    return model


class _CaptionCallback(EpochCallback):
    """jobs.ml.training's per-batch progress and per-epoch bookkeeping for a caption model: it always
    keeps the best weights (what is saved and scored), and its checkpoint also holds the dropout
    streams' positions and what `saved` records (vocabulary, sizes). `epoch` tells the training
    pipeline which epoch's order to draw."""

    validating = "checking the validation captions"

    def __init__(self, sink: ProgressSink, config: CaptionConfig, workdir: Path, steps: int, n_samples: int,
                 state: dict, saved: dict):
        self.saved = saved
        super().__init__(sink, workdir, epochs=config.epochs, patience=config.early_stopping_patience,
                         keep_best=True, steps=steps, per_epoch=n_samples, state=state, span=(TRAIN_START, TRAIN_END))

    def extra_state(self) -> dict:
        return {"seed_states": [np.asarray(v.numpy()).tolist() for v in _seed_states(self.model)], **self.saved}


# --- training -------------------------------------------------------------------------------------

def _check_config(config: CaptionConfig) -> None:
    """Fail before any work with a sentence a user can act on."""
    if config.epochs < 1 or config.batch_size < 1:
        raise ValueError("Training needs at least one epoch and a batch size of at least 1.")
    if not config.learning_rate > 0:
        raise ValueError("The learning rate must be a positive number.")
    if config.min_word_count < 1:
        raise ValueError("The minimum word count is a whole number of at least 1.")
    if config.max_length is not None and config.max_length < 2:
        raise ValueError("The maximum caption length must leave room for startseq and one word (at least 2).")
    if config.beam_width < 1:
        raise ValueError("The beam width is a whole number of at least 1.")
    if min(config.embedding_dim, config.units) < 1 or not 0 <= config.dropout < 1:
        raise ValueError("The embedding and LSTM sizes must be positive and the dropout rate in [0, 1).")


def _split_keys(captions: Mapping[str, Sequence[str]], splits: Mapping[str, Sequence[str]],
                seed: int) -> tuple[list[str], list[str], list[str], str]:
    """(train, val, test, evaluated_on): captioned keys per split, a validation slice when val is empty."""

    def usable(name: str) -> list[str]:
        return list(dict.fromkeys(k for k in splits.get(name) or [] if captions.get(k)))

    train, val, test = usable("train"), usable("val"), usable("test")
    if not train:
        raise ValueError("The training split has no captioned images.")
    evaluated_on = "test" if test else "validation"
    if not val:
        if len(train) < 2:
            raise ValueError("Without a validation split, training needs at least 2 captioned images "
                             "(some are held out to follow training).")
        order = np.random.default_rng(seed).permutation(len(train))
        n_val = max(1, round(len(train) * VALIDATION_SHARE))
        held = set(order[:n_val].tolist())
        val = [k for i, k in enumerate(train) if i in held]
        train = [k for i, k in enumerate(train) if i not in held]
        if not test:
            evaluated_on = "held-out training images"
    return train, val, test, evaluated_on


def _vocabulary(state: dict | None, captions: Mapping[str, Sequence[str]], train: Sequence[str],
                config: CaptionConfig) -> tuple[Vocabulary, int]:
    """(vocabulary, max_length): the checkpoint's when resuming (its weights index them), else built anew."""
    if state is not None:
        return Vocabulary(list(state["index_to_word"])), int(state["max_length"])
    vocab = build_vocabulary({k: captions[k] for k in train}, config.min_word_count)
    return vocab, int(config.max_length or min(vocab.longest, MAX_CAPTION_LENGTH))


def steps_per_execution(config: CaptionConfig, feature_dim: int, vocab_size: int, captions: CaptionSet,
                        steps: int) -> int:
    """Training batches per compiled call, so that one call takes about TARGET_CALL_SECONDS.

    As for classifiers (jobs.ml.training): small models finish a batch in a few milliseconds, and
    then Python's per-call cost (dispatch, callbacks) is a large share; several batches per call
    remove it. The cost of a sample is its multiply-adds (the LSTM's over the mean prefix length,
    as batches are trimmed) at an assumed speed: a wrong guess only changes how often progress
    is reported.
    """
    lengths = captions.lengths.astype(np.float64)
    mean_prefix = float(((lengths - 1) * lengths / 2).sum() / max(1.0, (lengths - 1).sum()))
    units, embedding = config.units, config.embedding_dim
    per_sample = (feature_dim * units + mean_prefix * 4 * units * (embedding + units) + units * units
                  + units * vocab_size)
    seconds_per_batch = 6 * per_sample * config.batch_size / ASSUMED_FLOPS_PER_SECOND
    wanted = int(TARGET_CALL_SECONDS / max(seconds_per_batch, 1e-9))
    return max(1, min(wanted, MAX_STEPS_PER_EXECUTION, steps))


def _new_model(feature_dim: int, vocab: Vocabulary, config: CaptionConfig, execution_steps: int) -> keras.Model:
    """The merge model for training: prefixes of any length (batches are trimmed), compiled with Adam.

    No XLA: every prefix length would compile its own program.
    """
    model = build_merge_model(feature_dim, vocab.size, None, config.embedding_dim, config.units, config.dropout,
                              config.seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  steps_per_execution=execution_steps, jit_compile=False)
    return model


def _for_use(trained: keras.Model, weights: list[np.ndarray] | None, feature_dim: int, vocab: Vocabulary,
             max_length: int, config: CaptionConfig) -> keras.Model:
    """The fixed-length merge model a person downloads, with `weights` (the best epoch's) or the trained ones."""
    model = build_merge_model(feature_dim, vocab.size, max_length, config.embedding_dim, config.units,
                              config.dropout, config.seed)
    model.set_weights(weights if weights is not None else trained.get_weights())
    return model


def _references(captions: Mapping[str, Sequence[str]], keys: Sequence[str]) -> list[list[list[str]]]:
    """Every caption of each image, tokenised as hypotheses are (empty ones left out)."""
    refs = []
    for key in keys:
        cleaned = [clean_caption(c).split() for c in captions[key]]
        refs.append([r for r in cleaned if r] or [[]])
    return refs


def _fit(model: keras.Model, matrix: np.ndarray, train_set: CaptionSet, val_set: CaptionSet, config: CaptionConfig,
         callback: _CaptionCallback, whose: str) -> None:
    """The epochs still to run (none when a resumed run had finished or stopped early), on batches drawn for
    each epoch by its number (see batch_plan); `whose` says whose captions, for the progress message."""
    if callback.initial_epoch >= config.epochs or callback.stopped_early:
        return
    callback.sink.progress(TRAIN_START, f"Training on {train_set.n_samples:,} words of {whose} captions")
    train_ds = make_caption_dataset(matrix, train_set, config.batch_size, shuffle=True, seed=config.seed,
                                    epoch=lambda: callback.epoch)
    val_ds = make_caption_dataset(matrix, val_set, config.batch_size)
    model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, initial_epoch=callback.initial_epoch,
              callbacks=[callback], verbose=0, shuffle=False)


def _score(captioner: Captioner, features: FeatureMatrix, captions: Mapping[str, Sequence[str]],
           train: Sequence[str], keys: Sequence[str], beam_width: int, sink: ProgressSink,
           evaluated_on: str) -> tuple[dict, str, list[dict]]:
    """(BLEU of greedy, beam and baseline captions, the baseline caption, the gallery) on `keys`, tokenised alike;
    `evaluated_on` names the split they come from, for the progress message."""
    where = {"test": "test", "validation": "validation"}.get(evaluated_on, "held-out training")
    message = f"Scoring captions on the {where} images (greedy and beam search)"
    sink.progress(TRAIN_END, message)
    eval_features = np.asarray(features.rows(keys), dtype=np.float32)

    def stage(start: float, end: float) -> Callable[[int, int], None]:
        return lambda done, total: sink.progress(start + (end - start) * done / total, message)

    greedy = captioner.caption_batch(eval_features, 1, stage(TRAIN_END, GREEDY_END))
    beam = captioner.caption_batch(eval_features, beam_width, stage(GREEDY_END, BEAM_END))
    refs = _references(captions, keys)
    baseline = Counter(clean_caption(c) for k in train for c in captions[k]).most_common(1)[0][0]
    bleu = {
        "greedy": corpus_bleu(refs, [c.split() for c in greedy]),
        "beam": corpus_bleu(refs, [c.split() for c in beam]),
        "baseline": corpus_bleu(refs, [baseline.split()] * len(keys)),
    }
    gallery = [{"key": k, "greedy": g, "beam": b, "references": list(captions[k])}
               for k, g, b in list(zip(keys, greedy, beam, strict=True))[:GALLERY_SIZE]]
    return bleu, baseline, gallery


def _model_metadata(metadata: dict | None, vocab: Vocabulary, max_length: int, feature_dim: int,
                    config: CaptionConfig) -> dict:
    """What the saved model needs to be used (vocabulary, length, tokenisation), with the caller's metadata."""
    return {
        **(metadata or {}),
        "kind": "captioner", "architecture": ARCHITECTURE, "index_to_word": vocab.index_to_word,
        "vocab_size": vocab.size, "max_length": max_length, "feature_dim": feature_dim,
        "tokenisation": TOKENISATION, "start_token": START, "end_token": END, "padding": PADDING,
        "beam_width": config.beam_width, "config": asdict(config),
        "input": "image feature vectors of feature_dim values and word indices, right-padded with 0",
    }


def _encoded(state: dict | None, captions: Mapping[str, Sequence[str]], train: Sequence[str], val: Sequence[str],
             config: CaptionConfig, row_of: Mapping[str, int]):
    """(vocabulary, longest caption, the training and validation captions encoded): the checkpoint's vocabulary
    when resuming, else one built from the training captions."""
    vocab, max_length = _vocabulary(state, captions, train, config)
    return (vocab, max_length, encode_captions(train, captions, vocab, max_length, row_of),
            encode_captions(val, captions, vocab, max_length, row_of))


def _state_to_resume(workdir: Path, config: CaptionConfig, feature_dim: int, resume: bool) -> dict | None:
    """The checkpoint's state when resuming a run with the same features and model, else None (and it is forgotten)."""
    state = _read_state(workdir, config, feature_dim) if resume else None
    if state is None:
        forget_state(workdir)
    return state


def train_captioner(features: FeatureMatrix, captions: Mapping[str, Sequence[str]],
                    splits: Mapping[str, Sequence[str]], config: CaptionConfig, workdir: Path,
                    sink: ProgressSink, metadata: dict | None = None, resume: bool = False) -> CaptionResult:
    """Train the merge model on the training split, follow it on val, score BLEU on test.

    `captions` holds the raw captions per image key; `splits` the keys per split ("train",
    "val", "test"; keys without captions are ignored). Without a validation split, a tenth of the
    training images is held out for it; without a test split, captions are scored on the
    validation images (`evaluated_on` says which). The weights of the epoch with the lowest
    val_loss are kept. `metadata` (e.g. the backbone spec) is stored with the model.

    Every epoch checkpoints the whole training state in `workdir`. With `resume`, a checkpoint
    for the same features and model (RESUME_KEYS) is continued: its vocabulary, history,
    optimizer, dropout and early-stopping state come back and epochs follow up to `config.epochs`
    in all, as if it had never stopped; otherwise it starts over. Raises JobCancelled when the
    sink does, ValueError (a sentence for the user) for an unusable request.
    """
    started = time.perf_counter()
    workdir = Path(workdir)
    _check_config(config)
    sink.progress(0.0, "Preparing the captions")
    train, val, test, evaluated_on = _split_keys(captions, splits, config.seed)
    matrix, row_of = _feature_rows(features, [*train, *val, *test])
    feature_dim = int(matrix.shape[1])
    workdir.mkdir(parents=True, exist_ok=True)
    state = _state_to_resume(workdir, config, feature_dim, resume)
    vocab, max_length, train_set, val_set = _encoded(state, captions, train, val, config, row_of)

    keras.utils.set_random_seed(config.seed)
    plan = device_plan()
    device = plan.description.split(" · ")[0]  # float32 throughout: no mixed precision here
    sink.set_device(device)
    steps = steps_per_epoch(train_set, config.batch_size)
    with plan.strategy.scope():
        model = _load_checkpoint(workdir, state) if state else _new_model(
            feature_dim, vocab, config, steps_per_execution(config, feature_dim, vocab.size, train_set, steps))
    kept = {"index_to_word": vocab.index_to_word, "max_length": max_length, "feature_dim": feature_dim,
            "config": asdict(config)}
    callback = _CaptionCallback(sink, config, workdir, steps, train_set.n_samples, state or {}, kept)
    _fit(model, matrix, train_set, val_set, config, callback, f"{len(train)} images'")
    model = _for_use(model, callback.best_weights, feature_dim, vocab, max_length, config)

    bleu, baseline, gallery = _score(Captioner(model, vocab, max_length), features, captions, train, test or val,
                                     config.beam_width, sink, evaluated_on)
    sink.progress(BEAM_END, "Saving the model")
    model_path = save_model(model, workdir, _model_metadata(metadata, vocab, max_length, feature_dim, config))
    sink.progress(1.0, "Done")
    history = callback.history
    return CaptionResult(
        history=history, best_epoch=callback.best_epoch or len(history), bleu=bleu,
        baseline_caption=baseline, gallery=gallery, vocab_size=vocab.size, max_length=max_length,
        tokenisation=TOKENISATION, summary=zoo.summarize(model), params=int(model.count_params()),
        model_path=str(model_path), device=device, seconds=round(time.perf_counter() - started, 2),
        evaluated_on=evaluated_on, beam_width=config.beam_width, stopped_early=callback.stopped_early,
        epochs_run=callback.epochs_run, resumed_from=callback.initial_epoch,
        samples_per_epoch=train_set.n_samples,
        samples_per_second=round(callback.seen / callback.train_seconds, 1) if callback.train_seconds else 0.0,
        split_sizes={"train": len(train), "val": len(val), "test": len(test)},
        model_epoch=callback.best_epoch if callback.best_weights is not None else len(history),
    )
