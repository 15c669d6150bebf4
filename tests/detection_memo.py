"""CenterFace's answers remembered within a test process, for tests that are not about it.

The detector is a pure function of its input: the same model file, the same pixels, scale
and threshold give the same faces. The suite shows it the same pixels again and again (the
same LFW photos enrolled in one module after another, the Hamilton clip decoded by every
video test), and a run measured 2,696 calls of which 77 % repeated an earlier call of the
same worker: 192 of the 248 s spent detecting. So each answer is computed by the real model
once per worker and handed out again (as copies) when the same question comes back.

Every answer still comes from the real model; only a repeated question is not asked twice.
The detector's own tests (``tests/vision``) and the start-up tests run without the memo
(``WITHOUT_MEMO``): they are about how the model is loaded, cached and run, which a
remembered answer would skip.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from visage.vision.detect import CenterFaceDetector, ScalePolicy
from visage.vision.types import Detection, RGBImage

Key = tuple[str, tuple[int, ...], float, float, bytes]

_answers: dict[Key, list[Detection]] = {}
_lock = threading.Lock()
_state = {"on": False}
_real: Callable[..., list[Detection]] = CenterFaceDetector.detect


WITHOUT_MEMO = ("vision", "test_startup.py")
"""The detector's own tests, and the start-up tests that check a first detection builds and
caches its graph: they are about the model being loaded and run."""


def uses_memo(test_path: Path, tests_root: Path) -> bool:
    """Whether a test in ``test_path`` gets remembered answers."""
    return test_path.relative_to(tests_root).parts[0] not in WITHOUT_MEMO


def set_enabled(on: bool) -> None:
    _state["on"] = on


def _copy(found: list[Detection]) -> list[Detection]:
    return [dataclasses.replace(d, landmarks=d.landmarks.copy()) for d in found]


def _detect(
    self: CenterFaceDetector,
    image: RGBImage,
    threshold: float = 0.5,
    policy: ScalePolicy | None = None,
) -> list[Detection]:
    if not _state["on"]:
        return _real(self, image, threshold, policy)
    height, width = image.shape[:2]
    factor = (policy or self.policy).factor(width, height)
    digest = hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16).digest()
    key: Key = (str(self.path), tuple(image.shape), factor, threshold, digest)
    with _lock:
        known = _answers.get(key)
    if known is None:
        known = _real(self, image, threshold, policy)
        with _lock:
            _answers[key] = _copy(known)
    return _copy(known)


def install() -> None:
    """Route ``CenterFaceDetector.detect`` through the memo (off until :func:`set_enabled`)."""
    CenterFaceDetector.detect = _detect  # type: ignore[method-assign]
