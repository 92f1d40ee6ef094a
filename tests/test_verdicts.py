"""A finished run's verdict says whether it learned, in a sentence with a next step (issue 15)."""

from __future__ import annotations

from webapp.experiments.verdicts import caption_verdict, classifier_verdict

SHAPES = ["blue_circles", "green_squares", "red_triangles"]


def epochs(val_losses):
    return [{"epoch": i + 1, "val_loss": loss} for i, loss in enumerate(val_losses)]


def test_a_classifier_at_chance_that_answers_one_class_says_so():
    result = {"test_accuracy": 1 / 3, "classes": SHAPES, "confusion_matrix": [[0, 10, 0], [0, 10, 0], [0, 10, 0]]}

    said = classifier_verdict(result, epochs([1.1, 1.1, 1.1]))

    assert said["level"] == "bad"
    assert said["headline"] == "No better than guessing (1 in 3): it predicts green_squares for everything."
    assert "more epochs" in said["advice"] and "transfer" in said["advice"]


def test_a_classifier_at_chance_whose_validation_loss_climbed_is_told_to_slow_down():
    result = {"test_accuracy": 0.35, "classes": SHAPES, "confusion_matrix": [[4, 3, 3], [3, 4, 3], [3, 4, 3]]}

    said = classifier_verdict(result, epochs([1.1, 1.3, 2.2, 4.0, 6.3]))

    assert said["headline"] == "No better than guessing (1 in 3)."
    assert "smaller learning rate" in said["advice"]


def test_a_run_whose_validation_loss_rose_memorised_its_images():
    result = {"test_accuracy": 0.8, "classes": SHAPES, "best_epoch": 5,
              "confusion_matrix": [[8, 1, 1], [1, 8, 1], [1, 1, 8]]}

    said = classifier_verdict(result, epochs([1.1, 0.6, 0.9, 1.4, 2.0]))

    assert said["level"] == "fair"
    assert said["headline"].startswith("Validation loss rose after epoch 2: it memorised the training images.")
    assert "early stopping" in said["advice"]


def test_a_good_run_says_how_good_on_images_it_never_saw():
    result = {"test_accuracy": 0.97, "classes": SHAPES, "confusion_matrix": [[10, 0, 0], [0, 10, 0], [1, 0, 9]]}

    assert classifier_verdict(result, epochs([1.0, 0.4, 0.2])) == {
        "level": "good", "headline": "Good: 97% on images it never saw.", "advice": ""}


def test_a_caption_model_below_the_most_common_caption_is_called_out():
    result = {"bleu": {"greedy": {"bleu4": 0.13}, "beam": {"bleu4": 0.13}, "baseline": {"bleu4": 0.26}},
              "baseline_caption": "a red circle"}

    said = caption_verdict(result)

    assert said["level"] == "bad" and "“a red circle”" in said["headline"] and "0.13 against 0.26" in said["headline"]
    good = caption_verdict({"bleu": {"beam": {"bleu4": 0.9}, "baseline": {"bleu4": 0.2}}})
    assert good["level"] == "good"
