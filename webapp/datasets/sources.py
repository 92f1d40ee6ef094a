"""The datasets a user can add with one click, by the name the API and the page use.

Built-ins are generated offline (scikit-learn's digits, drawn shapes); reference datasets are
downloaded through Keras where the machine has internet.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs.ml.catalog import BUILTIN_DATASETS, REFERENCE_DATASETS  # plain catalogues: no NumPy, no Keras


@dataclass(frozen=True)
class Source:
    name: str
    source: str  # Dataset.source
    title: str
    kind: str
    description: str
    offline: bool


SOURCES: dict[str, Source] = {
    **{name: Source(name, f"builtin:{name}", b.title, b.kind, b.description, True)
       for name, b in BUILTIN_DATASETS.items()},
    **{name: Source(name, f"reference:{name}", r.title, "classification", r.description, False)
       for name, r in REFERENCE_DATASETS.items()},
}
