"""The grammar of the ``embedder`` setting, and nothing else: read by the settings (so that
a wrong value fails when it is read) and by :mod:`visage.vision.embedders` (which builds the
model it names). It sits in the bottom layer because settings may not import the models and
the models may not import the settings."""

from __future__ import annotations

EMBEDDERS = ("dlib-resnet", "sface")
"""The built-in embedders an ``embedder`` setting names (:mod:`visage.vision.embedders`)."""


def single_embedder(value: str) -> bool:
    """``value`` names one model: a built-in one or ``onnx:/path/model.onnx``."""
    return value in EMBEDDERS or (value.startswith("onnx:") and len(value) > len("onnx:"))


def split_fusion(setting: str) -> tuple[str, str, float | None] | None:
    """``A+B`` or ``A+B@W`` as (A, B, W or None); None for a single model. ``+`` splits
    only where a model setting starts after it (so an ``onnx:`` path may contain one)."""
    body, weight = setting, None
    head, at, tail = setting.rpartition("@")
    if at and "/" not in tail:
        try:
            weight = float(tail)
        except ValueError:
            weight = None
        else:
            body = head
    cuts = [
        i
        for i, ch in enumerate(body)
        if ch == "+" and body[i + 1 :].startswith(("dlib-resnet", "sface", "onnx:"))
    ]
    if len(cuts) != 1:
        return None
    first, second = body[: cuts[0]].strip(), body[cuts[0] + 1 :].strip()
    return first, second, weight


def check_embedder(value: str) -> str:
    """A valid ``embedder`` setting, or ValueError (what settings validation reports):
    ``dlib-resnet``, ``sface``, ``onnx:/path/model.onnx``, or the fusion of two of them,
    ``A+B`` (the weight Visage calibrated for the pair, else 0.5) or ``A+B@W``. The grammar
    lives here, below the models, so that a wrong setting fails when it is read."""
    value = value.strip()
    if single_embedder(value):
        return value
    fused = split_fusion(value)
    if fused is not None:
        first, second, weight = fused
        if weight is not None and not 0.0 < weight < 1.0:
            raise ValueError(f"a fusion weight lies strictly between 0 and 1, not {weight}")
        if single_embedder(first) and single_embedder(second) and first != second:
            return value
    raise ValueError(
        f"embedder must be one of {', '.join(EMBEDDERS)}, onnx:/path/model.onnx, or two of "
        f"them fused as A+B (optionally A+B@weight), not {value!r}"
    )
