"""The first run a built-in dataset suggests (jobs.ml.catalog): shown on its page, prefilled on the Train form."""

from __future__ import annotations

from jobs.ml.catalog import ARCHITECTURES, BUILTIN_DATASETS
from webapp.jobs.registry import param_label


def suggestion_for(dataset) -> dict | None:
    """A built-in dataset's suggested run, or None: {"architecture", "params" (those that differ from the
    defaults), "title", "settings" (the params in words), "why"}. The dataset page shows it and the
    Train form prefills it."""
    kind, _, name = (dataset.source or "").partition(":")
    source = BUILTIN_DATASETS.get(name) if kind == "builtin" else None
    if source is None or source.suggested is None:
        return None
    suggested = source.suggested
    params = dict(suggested.params)
    words = [f"{value} epochs" if key == "epochs" else f"{param_label('train', key).lower()} {value}"
             for key, value in params.items()]
    return {"architecture": suggested.architecture, "params": params,
            "title": ARCHITECTURES[suggested.architecture].title,
            "settings": " · ".join(words) if words else "its defaults", "why": suggested.why}
