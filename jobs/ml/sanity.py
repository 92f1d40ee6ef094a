"""The sanity check of an uploaded backbone: does it see the photos at all? (issue 10)

A backbone fed its pixels the wrong way does not fail: it answers, with numbers that hardly
depend on the photo, and every job built on it then trains at chance. So a backbone is run on a
handful of varied photos when it is uploaded (and whenever its input scaling changes), and the
report says two things a person can judge at a glance:

- how much its features differ between photos (`spread`): the typical spread of a feature
  across the photos relative to its typical size. Near zero means "the same numbers for every
  photo", the mark of saturated or collapsed inputs;
- when the model ends in a 1000- or 1001-way ImageNet classifier, the top-5 labels it gives
  each photo under the chosen scaling, and whether it recognises the two sample photos whose
  subject is known (a cat, a hot dog).

The photos: two sample photos shipped in `samples/` (Apache-2.0), the two sample photos shipped
inside scikit-learn, and images from the owner's dataset when one is chosen.

How the model is run under each scaling is its format's business (`jobs.ml.formats`, and the runtime
module its class calls); this module asks the registry and judges the numbers.

No Django here; TensorFlow loads inside the functions, on the inference worker.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jobs.ml import formats
from jobs.ml.backbones import Backbone
from jobs.ml.scaling import SCALINGS, InputScaling

SAMPLES = Path(__file__).resolve().parent / "samples"
IMAGENET_LABELS = SAMPLES / "imagenet_labels.txt"
TOP = 5
MAX_PHOTOS = 24

# Below this spread the features barely depend on the photo (measured: real MobileNet features fed
# right spread 0.9-1.3 over the sample photos; fed a wrong scaling, 0.0-0.1). See `spread`.
LOW_SPREAD = 0.2
# Without a classifier to ask, another scaling is suggested when its spread is this many times the
# chosen one's (measured: a float MobileNet wanting -1..1 spreads 0.26 on 0..255 and 0.56 on -1..1).
SUGGEST_RATIO = 1.5

NEARLY_SAME = ("This model gives almost the same numbers for every photo, so it cannot tell photos apart; "
               "check its input scaling (or choose another output layer).")
ALL_ZERO = ("This model's output is zero for every photo; choose another output layer, or check its input "
            "scaling.")


@dataclass(frozen=True)
class Photo:
    name: str  # how the report names it
    path: Path
    subject: str = ""  # what a person sees in it, for the known samples: "cat", "hot dog"
    expect: tuple[str, ...] = ()  # ImageNet label words that mean the model recognised it


def sample_photos() -> list[Photo]:
    """The built-in photos: two with a known subject, and scikit-learn's two (a palace, a flower)."""
    photos = [Photo("cat", SAMPLES / "cat_720p.jpg", "a cat", ("cat",)),
              Photo("hot dog", SAMPLES / "hot_dog.jpg", "a hot dog", ("hotdog", "hot dog"))]
    try:
        import sklearn

        images = Path(sklearn.__file__).parent / "datasets" / "images"
        photos += [Photo(name, images / f"{name}.jpg") for name in ("china", "flower")
                   if (images / f"{name}.jpg").is_file()]
    except ImportError:  # pragma: no cover - workers always have scikit-learn
        pass
    return photos


def imagenet_labels(width: int) -> list[str]:
    """The standard ImageNet labels for a 1001-way (background first) or 1000-way output."""
    labels = IMAGENET_LABELS.read_text(encoding="utf-8").splitlines()
    return labels if width == 1001 else labels[1:]


def spread(features: np.ndarray) -> float:
    """How much features differ between photos: mean over features of their std across photos,
    divided by the root mean square of all values. 0 when every photo gives the same numbers."""
    features = np.asarray(features, np.float64).reshape(len(features), -1)
    size = float(np.sqrt(np.mean(features ** 2)))
    if len(features) < 2 or size == 0.0:
        return 0.0
    return float(np.mean(features.std(axis=0)) / size)


def _read(photo: Photo, size: int, channels: int) -> np.ndarray | None:
    from jobs.ml.predict import BadImage, read_image

    try:
        return read_image(photo.path.read_bytes(), size, channels)
    except (OSError, BadImage):
        return None


def _softmax(scores: np.ndarray) -> np.ndarray:
    """Probabilities from a classifier's output: kept when it already is one, softmax of logits otherwise."""
    scores = np.asarray(scores, np.float64)
    if scores.min() >= 0 and np.allclose(scores.sum(axis=1), 1.0, atol=0.02):
        return scores
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


# --- running the backbone under each scaling --------------------------------------------------------

Runner = formats.Runner  # features or scores(scaling, pixels); each format makes its own (jobs.ml.formats,
# which runs Keras files through jobs.ml.keras_runtime and TFLite ones through jobs.ml.tflite_runtime)


def _classifier(backbone: Backbone) -> Runner | None:
    """scores(scaling, pixels) of the ImageNet classifier the backbone's file ends in, or None."""
    if not backbone.source:
        return None
    try:
        return formats.by_kind(backbone.kind).classifier(backbone)
    except (ValueError, RuntimeError, OSError):
        return None


# --- the report ------------------------------------------------------------------------------------

def candidates(chosen: InputScaling, channels: int) -> list[InputScaling]:
    """The chosen scaling first, then every named one the model's channels allow."""
    found = [chosen]
    for kind in SCALINGS:
        if kind == "mean_std" or (kind in ("caffe", "torch") and channels != 3):
            continue
        scaling = InputScaling(kind)
        if scaling not in found:
            found.append(scaling)
    return found


def _words(label: str) -> set[str]:
    text = label.lower()
    return set(re.findall(r"[a-z]+", text)) | {part.strip() for part in text.split(",")}


def _recognised(photo: Photo, top: list[dict]) -> bool:
    return any(word in _words(entry["label"]) for entry in top for word in photo.expect)


def _confidence(photos: list[Photo], probabilities: np.ndarray, names: Sequence[str]) -> float:
    """Mean probability the classifier gives the known photos' right labels: how sure, not just whether."""
    if not photos:
        return 0.0
    right = [[i for i, name in enumerate(names) if any(word in _words(name) for word in photo.expect)]
             for photo in photos]
    return round(float(np.mean([row[indices].sum() for row, indices in zip(probabilities, right, strict=True)])), 4)


def _top(probabilities: np.ndarray, names: Sequence[str]) -> list[list[dict]]:
    tops = []
    for row in probabilities:
        order = np.argsort(-row, kind="stable")[:TOP]
        tops.append([{"label": names[i], "probability": round(float(row[i]), 4)} for i in order])
    return tops


def _suggestion(chosen: dict, others: list[dict], classifier: bool) -> dict | None:
    """The alternative that clearly does better than the chosen scaling, if one does.

    With an ImageNet classifier, "better" is recognising more sample photos (ties: the more
    probability on their right labels); without one, a spread at least SUGGEST_RATIO times the chosen one's.
    """
    if classifier:
        best = max(others, key=lambda o: (o["recognised"], o["confidence"]), default=None)
        return best if best and best["recognised"] > chosen["recognised"] else None
    best = max(others, key=lambda o: o["spread"], default=None)
    return best if best and best["spread"] >= SUGGEST_RATIO * max(chosen["spread"], 1e-9) else None


def check(backbone: Backbone, extra: Sequence[tuple[str, Path]] = (), labels: Sequence[str] | None = None) -> dict:
    """The sanity report of `backbone` on the sample photos plus `extra` (name, image path) ones.

    {"photos": [{"name", "subject", "top5"?, "recognised"?}], "spread", "classifier", "recognised",
     "known", "status": "ok" | "warning", "messages": [sentences], "scaling", "alternatives":
     [{"scaling", "title", "spread", "recognised"}], "suggested": scaling dict or None}.
    Raises ValueError (a sentence) when the photos cannot be run through it.
    """
    photos = sample_photos() + [Photo(name, Path(path)) for name, path in list(extra)[:MAX_PHOTOS]]
    read = [(photo, _read(photo, backbone.image_size, backbone.channels)) for photo in photos]
    read = [(photo, pixels) for photo, pixels in read if pixels is not None]
    if len(read) < 2:
        raise ValueError("The sample photos could not be read, so the backbone could not be checked.")
    batch = np.stack([pixels for _, pixels in read]).astype(np.float32)
    known = [i for i, (photo, _) in enumerate(read) if photo.expect]
    features_of, scores_of = formats.by_kind(backbone.kind).feature_runner(backbone), _classifier(backbone)

    rows, report_photos = [], [{"name": photo.name, "subject": photo.subject} for photo, _ in read]
    for scaling in candidates(backbone.scaling, backbone.channels):
        features = features_of(scaling, batch)
        row = {"scaling": scaling.to_dict(), "title": scaling.title, "spread": round(spread(features), 4),
               "zero": not np.any(features), "recognised": None, "confidence": None}
        if scores_of is not None:
            scores = scores_of(scaling, batch)
            width = scores.shape[1]
            names = list(labels) if labels is not None and len(labels) == width else imagenet_labels(width)
            probabilities = _softmax(scores)
            tops = _top(probabilities, names)
            row["recognised"] = sum(_recognised(read[i][0], tops[i]) for i in known)
            row["confidence"] = _confidence([read[i][0] for i in known], probabilities[known], names)
            if not rows:  # the chosen scaling: its labels are what the report shows
                for entry, top in zip(report_photos, tops, strict=True):
                    entry["top5"] = top
                for i in known:
                    report_photos[i]["recognised"] = _recognised(read[i][0], tops[i])
        rows.append(row)

    chosen, others = rows[0], rows[1:]
    suggested = _suggestion(chosen, others, scores_of is not None)
    messages, status = _messages(chosen, suggested, scores_of is not None, [read[i][0] for i in known])
    return {
        "photos": report_photos, "spread": chosen["spread"], "classifier": scores_of is not None,
        "recognised": chosen["recognised"], "known": len(known) if scores_of is not None else 0,
        "status": status, "messages": messages, "scaling": backbone.scaling.to_dict(),
        "alternatives": rows, "suggested": suggested["scaling"] if suggested else None,
    }


def _messages(chosen: dict, suggested: dict | None, classifier: bool, known: list[Photo]) -> tuple[list[str], str]:
    """(sentences, "ok" | "warning") for the chosen scaling's row."""
    messages, status = [], "ok"
    subjects = " and ".join(photo.subject for photo in known)
    if classifier and known:
        if chosen["recognised"] == 0:
            status = "warning"
            messages.append(f"As an ImageNet classifier it recognises none of the sample photos ({subjects}), so its "
                            "input scaling is probably wrong.")
        elif chosen["recognised"] < len(known):
            messages.append(f"As an ImageNet classifier it recognises {chosen['recognised']} of the {len(known)} "
                            f"sample photos ({subjects}); compare its labels with the photos.")
        else:
            messages.append(f"As an ImageNet classifier it recognises the sample photos ({subjects}): its input "
                            "scaling looks right.")
    if chosen["zero"]:
        status = "warning"
        messages.append(ALL_ZERO)
    elif chosen["spread"] < LOW_SPREAD:
        status = "warning"
        messages.append(NEARLY_SAME if not (classifier and chosen["recognised"]) else
                        "The chosen output gives almost the same numbers for every photo although the classifier "
                        "sees them right; choose an earlier layer (the one before the classifier) as the output.")
    if suggested is not None:
        status = "warning"
        if classifier:
            messages.append(f"With the {suggested['title']} scaling it recognises {suggested['recognised']} of the "
                            f"{len(known)} sample photos: that is probably the scaling it wants.")
        else:
            messages.append(f"Its features differ between photos far more with the {suggested['title']} scaling "
                            f"(spread {suggested['spread']:.2f}) than with {chosen['title']} ({chosen['spread']:.2f}): "
                            "that is probably the scaling it wants.")
    elif status == "ok" and not classifier:
        messages.append(f"Its features differ between photos as they should (spread {chosen['spread']:.2f}).")
    return messages, status
