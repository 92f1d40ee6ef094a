"""A finished run's plain verdict: did it learn, and what to try next (issue 15, "results that tell the truth").

A newcomer reads a big number as a success. 33.3 % on three classes is guessing; a caption model below
the always-the-most-common-caption baseline learned no more than that one sentence; a run whose
validation loss climbed for epochs memorised its training images. `verdict` says which, in a sentence,
with one concrete next step, from what every finished run already records (its result and its epochs).
It is written into `result["verdict"]` when the job ends (webapp.experiments.summary), so the API and
the job page say the same thing.

{"level": "good" | "fair" | "bad", "headline": one sentence, "advice": the next step ("" when none)}
"""

from __future__ import annotations

from collections.abc import Sequence

GUESS_MARGIN = 0.05  # within this of the best a constant answer scores: guessing
ONE_CLASS_SHARE = 0.9  # this share of the predictions on one class: "it predicts X for everything"
GOOD_ACCURACY = 0.9
OVERFIT_RISE = 1.5  # the last validation loss this many times the best one: memorised
OVERFIT_EPOCHS = 2  # and the best at least this many epochs before the end


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%" if value < 0.995 else f"{value * 100:.1f}%"


def classifier_verdict(result: dict, metrics: Sequence[dict]) -> dict | None:
    accuracy, matrix, classes = result.get("test_accuracy"), result.get("confusion_matrix"), result.get("classes")
    if not isinstance(accuracy, int | float) or not classes or not matrix:
        return None
    n, where = len(classes), "images it never saw"
    support = [sum(row) for row in matrix]
    predicted = [sum(row[j] for row in matrix) for j in range(n)]
    total = sum(support) or 1
    constant = max(support) / total  # what always answering the commonest class scores
    if accuracy <= max(1 / n, constant) + GUESS_MARGIN:
        favourite = max(range(n), key=lambda j: predicted[j])
        headline = f"No better than guessing (1 in {n})"
        if predicted[favourite] >= ONE_CLASS_SHARE * total:
            headline += f": it predicts {classes[favourite]} for everything"
        rise = _rise(metrics)
        advice = ("Validation loss rose while training accuracy climbed: try a smaller learning rate, a transfer "
                  "model, or more images." if rise else
                  "Train for more epochs, give it colour input if colour tells the classes apart, try a transfer "
                  "model, or add images.")
        return {"level": "bad", "headline": headline + ".", "advice": advice}
    rise = _rise(metrics)
    if rise:
        best, last = rise
        kept = result.get("model_epoch")  # the epoch the saved, evaluated model is from (the best one by default)
        if kept == best:
            return {"level": "fair", "headline": f"Validation loss rose after epoch {best}: it memorised the training "
                                                 f"images later. The saved model is from epoch {best}, before that: "
                                                 f"{_percent(accuracy)} on {where}.",
                    "advice": "Turn on early stopping to skip the epochs after the best one, add augmentation (flips, "
                              "rotation), or add images."}
        note = f" The saved model is from epoch {kept}." if isinstance(kept, int) else ""
        return {"level": "fair", "headline": f"Validation loss rose after epoch {best}: it memorised the training "
                                             f"images. {_percent(accuracy)} on {where}.{note}",
                "advice": "Keep the best epoch (Advanced, on by default) or turn on early stopping, add augmentation "
                          "(flips, rotation), or add images."}
    if accuracy >= GOOD_ACCURACY:
        return {"level": "good", "headline": f"Good: {_percent(accuracy)} on {where}.", "advice": ""}
    return {"level": "fair", "headline": f"Better than guessing (1 in {n}): {_percent(accuracy)} on {where}.",
            "advice": "Train longer, try a transfer model, or add images to go further."}


def _rise(metrics: Sequence[dict]) -> tuple[int, int] | None:
    """(best epoch, last epoch) when validation loss ended well above its best, some epochs after it."""
    losses = [(m["epoch"], float(m["val_loss"])) for m in metrics if isinstance(m.get("val_loss"), int | float)]
    if len(losses) < OVERFIT_EPOCHS + 1:
        return None
    best_epoch, best = min(losses, key=lambda pair: pair[1])
    last_epoch, last = losses[-1]
    if last_epoch - best_epoch >= OVERFIT_EPOCHS and best > 0 and last >= OVERFIT_RISE * best:
        return best_epoch, last_epoch
    return None


def caption_verdict(result: dict) -> dict | None:
    bleu = result.get("bleu") if isinstance(result.get("bleu"), dict) else {}
    model = (bleu.get("beam") or bleu.get("greedy") or {}).get("bleu4")
    baseline = (bleu.get("baseline") or {}).get("bleu4")
    if not isinstance(model, int | float) or not isinstance(baseline, int | float):
        return None
    said = result.get("baseline_caption") or "the most common caption"
    if model <= baseline:
        return {"level": "bad", "headline": f"No better than always answering “{said}”: BLEU-4 {model:.2f} against "
                                            f"{baseline:.2f} for that one sentence.",
                "advice": "Check the backbone's input scaling on the Features page, train longer, or add captions."}
    if model < 2 * baseline:
        return {"level": "fair", "headline": f"Somewhat better than always answering the most common caption: "
                                             f"BLEU-4 {model:.2f} against {baseline:.2f}.",
                "advice": "Train longer or with more captions per photo to go further."}
    return {"level": "good", "headline": f"Good: BLEU-4 {model:.2f} on photos it never saw, against {baseline:.2f} "
                                         "for always answering the most common caption.", "advice": ""}
