"""What an embedder needs and gives: its alignment template and preprocessing
(:class:`EmbedderSpec`) and what the pipeline calls (:class:`Embedder`), shared by
:mod:`.embed` (dlib's ResNet), :mod:`.embedders` and :mod:`.fusion`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from visage.vision.types import RGBImage

DLIB_ID = "dlib-resnet-v1"
"""dlib's ResNet's model id, the one templates carry (``templates.model_id``)."""

SFACE_ID = "sface-2021dec-int8bq"
"""OpenCV's SFace's model id."""

Alignment = Literal["dlib150", "arcface112"]
ALIGNMENTS: dict[str, int] = {"dlib150": 150, "arcface112": 112}
"""Alignment templates and their chip side in pixels."""


@dataclass(frozen=True, slots=True)
class EmbedderSpec:
    """How a network is fed: chips from ``alignment`` (RGB uint8), channels reordered to
    ``channels``, then ``(x - mean) / std`` per channel, as NCHW float32 (``layout``)."""

    alignment: Alignment
    dim: int
    channels: Literal["rgb", "bgr"] = "rgb"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    layout: Literal["nchw", "nhwc"] = "nchw"

    @property
    def input_size(self) -> int:
        return ALIGNMENTS[self.alignment]


DLIB_SPEC = EmbedderSpec(
    alignment="dlib150",
    dim=128,
    channels="rgb",
    mean=(122.782, 117.001, 104.298),  # dlib's input_rgb_image_sized mean, inside the graph
    std=(256.0, 256.0, 256.0),
    layout="nhwc",
)
"""dlib's ResNet, for the record: its graph takes uint8 NHWC chips and does this itself."""


class Embedder(Protocol):
    """What the pipeline needs of an embedder."""

    name: str
    """The model id templates carry: one embedding space."""
    spec: EmbedderSpec

    @property
    def fingerprint(self) -> str: ...

    @property
    def model(self) -> object: ...

    def embed(self, chips: Sequence[RGBImage]) -> NDArray[np.float32]: ...
