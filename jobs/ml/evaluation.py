"""Scores of a classifier on a labelled split, from its predicted probabilities.

Every classifier VisionLab trains (zoo models, transfer heads, logistic regression) ends with
the same report on the job page: loss, accuracy, the confusion matrix, per-class precision and
recall, and the most confident mistakes. One function makes it, whatever produced the
probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAX_MISTAKES = 12


def classification_report(truth: Sequence[int], probabilities: np.ndarray, class_names: Sequence[str],
                          paths: Sequence[str]) -> dict:
    """{"loss", "accuracy", "confusion_matrix", "per_class", "mistakes", "predictions"} for `probabilities`
    (rows = items).

    The loss is the mean cross-entropy, as Keras reports `sparse_categorical_crossentropy`.
    `predictions` holds one (path, true class index, predicted class index) per item, in `paths` order.
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    n = len(class_names)
    truth = np.asarray(truth, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    predicted = probabilities.argmax(axis=1)
    eps = 1e-7
    loss = float(-np.mean(np.log(np.clip(probabilities[np.arange(len(truth)), truth], eps, 1.0))))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=list(range(n)), zero_division=0)
    wrong = np.flatnonzero(predicted != truth)
    confidence = probabilities[wrong, predicted[wrong]]
    worst = wrong[np.argsort(-confidence, kind="stable")][:MAX_MISTAKES]
    return {
        "loss": loss,
        "accuracy": float(np.mean(predicted == truth)),
        "confusion_matrix": confusion_matrix(truth, predicted, labels=list(range(n))).tolist(),
        "per_class": [{"name": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                      for name, p, r, f, s in zip(class_names, precision, recall, f1, support, strict=True)],
        "mistakes": [{"path": str(paths[i]), "true": class_names[truth[i]], "predicted": class_names[predicted[i]],
                      "confidence": float(probabilities[i, predicted[i]])} for i in worst],
        "predictions": [(str(path), int(t), int(p)) for path, t, p in zip(paths, truth, predicted, strict=True)],
    }
