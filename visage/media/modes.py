"""How a face is masked: the choices, in a module with no import, so that the command line
can offer them (``--mode``, ``--shape``) without loading OpenCV."""

from __future__ import annotations

from enum import StrEnum


class BlurMode(StrEnum):
    gaussian = "gaussian"
    pixelate = "pixelate"
    solid = "solid"


class MaskShape(StrEnum):
    ellipse = "ellipse"
    box = "box"
