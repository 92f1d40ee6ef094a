"""Train/validation/test assignment that is stable, stratified and never starves a class.

The order comes from a seeded hash of each key, not from the input order, so the same items
get the same split however a database happens to return them, and a different seed reshuffles.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Hashable, Sequence

from jobs.ml.datasets.model import SPLITS


def _order(key: Hashable, seed: int) -> tuple[bytes, str]:
    """A seeded, process-independent sort key (Python's hash() is salted per process)."""
    text = repr(key)
    return hashlib.sha256(f"{seed}\0{text}".encode()).digest(), text


def _round(x: float) -> int:
    """Round half up: 2.5 -> 3, not Python's banker's 2."""
    return math.floor(x + 0.5)


def split_counts(n: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    """How many of n items go to train, val and test.

    Val and test get their rounded share; a class of 3 or more gets at least one in each split
    whose fraction is nonzero; train always keeps at least one item.
    """
    if n <= 0:
        return 0, 0, 0
    total = sum(fractions)
    f_val, f_test = fractions[1] / total, fractions[2] / total
    val, test = _round(n * f_val), _round(n * f_test)
    if n >= 3:
        val = max(val, 1 if f_val > 0 else 0)
        test = max(test, 1 if f_test > 0 else 0)
    while val + test > n - 1:  # give back to train, from the larger share first
        if val >= test and val > 0:
            val -= 1
        else:
            test -= 1
    return n - val - test, val, test


def images_needed(fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> int:
    """The fewest images a class needs so that every split with a nonzero share gets at least one.

    A smaller class trains on all its images and is never validated or tested on, so the
    accuracy said about it would be made up: ingestion warns about it, and training refuses it.
    """
    wanted = [f > 0 for f in fractions]
    n = 1
    while [count > 0 for count in split_counts(n, fractions)] != wanted and n < 1000 * len(fractions):
        n += 1
    return n


def stratified_split(keys_by_label: dict[str, list], fractions: Sequence[float] = (0.8, 0.1, 0.1),
                     seed: int = 0) -> dict:
    """{key: "train" | "val" | "test"} with each label split in the given proportions.

    Deterministic for a seed and independent of the order of labels and keys. Captions
    datasets pass a single label "".
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or sum(fractions) <= 0:
        raise ValueError(f"fractions must be three non-negative numbers with a positive sum, not {fractions}")
    result: dict = {}
    for keys in keys_by_label.values():
        ordered = sorted(keys, key=lambda k: _order(k, seed))
        train, val, _ = split_counts(len(ordered), fractions)
        for index, key in enumerate(ordered):
            result[key] = SPLITS[0] if index < train else SPLITS[1] if index < train + val else SPLITS[2]
    return result
