"""What an embedder needs and gives: its alignment template and preprocessing
(:class:`EmbedderSpec`), shared by :mod:`.embed` (dlib's ResNet) and :mod:`.embedders`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
