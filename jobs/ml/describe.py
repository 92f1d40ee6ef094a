"""The layer table and parameter count of any architecture, before anyone trains it.

The launch form's memory check and the catalogue ask the inference worker for these. Scratch
architectures are built by `jobs.ml.zoo`, the backbone ones by `jobs.ml.transfer`; this module
sits above both, so the zoo (which the training code imports) never reaches back into transfer
learning, and no module in the chain imports another inside a function to dodge a circle.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence

from jobs.ml.backbones import builtin
from jobs.ml.catalog import ARCHITECTURES
from jobs.ml.transfer import build_transfer_model
from jobs.ml.zoo import build_model, check_input, get_architecture, summarize


@functools.lru_cache(maxsize=64)
def _describe(name: str, shape: tuple[int, int, int], num_classes: int) -> dict:
    # Only the table is kept: the model (VGG16's weights are half a gigabyte) is freed on return.
    arch = ARCHITECTURES[name]
    if arch.uses_backbone:
        backbone = builtin(arch.default_backbone, "random", image_size=shape[0])
        summary = summarize(build_transfer_model(backbone, num_classes, name=name))
        return {"architecture": name, "input_shape": [backbone.image_size, backbone.image_size, backbone.channels],
                "classes": num_classes, "backbone": arch.default_backbone, **summary}
    summary = summarize(build_model(name, shape, num_classes))
    return {"architecture": name, "input_shape": list(shape), "classes": num_classes, **summary}


def describe(name: str, input_shape: Sequence[int] | None = None, num_classes: int | None = None) -> dict:
    """`summarize(build_model(...))` at the given or the reference shape and class count.

    Adds {"architecture", "input_shape", "classes"}. Results are cached per (name, shape,
    classes): building VGG16 takes seconds and the answer never changes. Each call returns its
    own copy, so a caller may edit it freely.
    """
    arch = get_architecture(name)
    shape, classes = check_input(
        name,
        arch.reference_input_shape if input_shape is None else input_shape,
        arch.reference_classes if num_classes is None else num_classes,
    )
    return copy.deepcopy(_describe(name, shape, classes))


describe.cache_info = _describe.cache_info  # type: ignore[attr-defined]
describe.cache_clear = _describe.cache_clear  # type: ignore[attr-defined]
