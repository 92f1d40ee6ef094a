"""The saved model is the best epoch's (issue 15, item 2), through a resume too, or the result says it is not.

A small multilayer perceptron on 60 of scikit-learn's 8x8 digit scans, half of them with a random
label, memorises the noise: its validation loss bottoms out around epoch 8 and then climbs. Before
the fix the model saved and evaluated was the last epoch's while the page highlighted the best one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jobs.ml.progress import JobCancelled
from jobs.ml.training import TrainConfig, train_classifier
from tests.sinks import RecordingSink

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

CLASSES = [str(d) for d in range(10)]
NOISY = TrainConfig("mlp", image_size=8, channels=1, epochs=20, batch_size=16, learning_rate=0.01, seed=0)


@pytest.fixture(scope="module")
def noisy_digits(tmp_path_factory) -> dict[str, list[tuple[str, int]]]:
    """60 training scans, half relabelled at random (seeded), and 100 clean scans each to validate and test."""
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("noisy-digits")
    data = load_digits()
    items = []
    for index in range(400):
        path = root / f"{index}.png"
        Image.fromarray((data.images[index] * 255 / 16).astype(np.uint8), "L").save(path)
        items.append((str(path), int(data.target[index])))
    rng = np.random.default_rng(0)
    train = [(p, int(rng.integers(10)) if rng.random() < 0.5 else y) for p, y in items[:60]]
    return {"train": train, "val": items[200:300], "test": items[300:400]}


def loss_of_saved_model(workdir: Path, items: list[tuple[str, int]], config: TrainConfig) -> float:
    """Cross-entropy of `workdir/model.keras` on `items`, read as training reads them."""
    import keras

    from jobs.ml.pipeline import make_dataset

    model = keras.models.load_model(workdir / "model.keras", compile=False)
    probabilities = model.predict(make_dataset(items, config.image_size, config.channels, 64), verbose=0)
    labels = np.array([label for _, label in items])
    return float(-np.mean(np.log(np.clip(probabilities[np.arange(len(labels)), labels], 1e-7, 1.0))))


def test_the_saved_model_is_the_best_epochs_even_after_a_resume(noisy_digits, tmp_path):
    splits = noisy_digits
    with pytest.raises(JobCancelled):  # the user cancels (or a worker dies) in epoch 11
        train_classifier(splits["train"], splits["val"], splits["test"], CLASSES, NOISY, tmp_path,
                         RecordingSink(cancel_on="Epoch 11/"))

    result = train_classifier(splits["train"], splits["val"], splits["test"], CLASSES, NOISY, tmp_path,
                              RecordingSink(), resume=True)

    losses = [h["val_loss"] for h in result.history]
    assert len(losses) == 20 and result.epochs_run == 10
    best = 1 + int(np.argmin(losses))
    assert result.best_epoch == best <= 10  # found before the resume: its weights came back from disk
    assert losses[-1] > 1.1 * losses[best - 1], losses  # the case at hand: validation loss rose late
    assert result.model_epoch == best
    assert loss_of_saved_model(tmp_path, splits["val"], NOISY) == pytest.approx(losses[best - 1], rel=1e-4)
    assert loss_of_saved_model(tmp_path, splits["test"], NOISY) == pytest.approx(result.test_loss, rel=1e-4)


def test_with_keeping_the_best_turned_off_the_result_says_the_model_is_the_last_epochs(noisy_digits, tmp_path):
    splits = noisy_digits
    config = TrainConfig(**{**NOISY.__dict__, "epochs": 10, "keep_best": False})

    result = train_classifier(splits["train"], splits["val"], splits["test"], CLASSES, config, tmp_path,
                              RecordingSink())

    losses = [h["val_loss"] for h in result.history]
    assert result.best_epoch < 10 and result.model_epoch == 10, losses
    assert loss_of_saved_model(tmp_path, splits["val"], config) == pytest.approx(losses[-1], rel=1e-4)


def test_the_verdict_of_a_run_whose_validation_loss_rose_says_the_saved_model_is_from_before():
    from webapp.experiments.verdicts import classifier_verdict

    epochs = [{"epoch": i + 1, "val_loss": loss} for i, loss in enumerate([1.1, 0.6, 0.9, 1.4, 2.0])]
    result = {"test_accuracy": 0.8, "classes": ["a", "b", "c"], "confusion_matrix": [[8, 1, 1], [1, 8, 1], [1, 1, 8]],
              "best_epoch": 2, "model_epoch": 2}

    kept = classifier_verdict(result, epochs)
    last = classifier_verdict({**result, "model_epoch": 5}, epochs)

    assert kept["headline"] == ("Validation loss rose after epoch 2: it memorised the training images later. The saved "
                                "model is from epoch 2, before that: 80% on images it never saw.")
    assert "early stopping" in kept["advice"] and "Keep the best epoch" not in kept["advice"]
    assert last["headline"].endswith("80% on images it never saw. The saved model is from epoch 5.")
    assert "Keep the best epoch" in last["advice"]
