"""A test clip with large, close faces, built at test time (never committed): a slow zoom
over each of the ``scenes/`` photographs of the test data, towards its faces.

Hamilton's faces are small (30-90 px); a mask that hides a small face may still leave a
large one recognisable — its outline, shading and the layout of eyes and mouth survive a
blur far better. Here the faces grow from about a fifth to about half of the frame's height,
so every mask is judged on large faces too. Used by tests/media/test_masks.py and by
bench/anonymize.py (which builds it at 1280x720).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from numpy.typing import NDArray

SCENES = ("two_people.jpg", "obama_and_biden.jpg", "kit_with_rose.jpg")
END_FACE_SHARE = 0.5
"""At the end of each scene's zoom, its largest face is about this share of the frame's height."""


def _faces(image: NDArray[np.uint8]) -> list[tuple[int, int, int, int]]:
    """(left, top, right, bottom) of the faces in ``image``, found by dlib's HOG detector on a
    copy at most 1000 px wide (the photographs are still; this only picks where to zoom)."""
    import dlib

    scale = min(1.0, 1000 / image.shape[1])
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    found = dlib.get_frontal_face_detector()(np.ascontiguousarray(small), 1)
    return [
        (
            int(r.left() / scale),
            int(r.top() / scale),
            int(r.right() / scale),
            int(r.bottom() / scale),
        )
        for r in found
    ]


def _zoom_frames(
    image: NDArray[np.uint8], width: int, height: int, n: int
) -> list[NDArray[np.uint8]]:
    """``n`` frames zooming from the whole photograph (cropped to the frame's aspect) to a
    window where its largest face fills ``END_FACE_SHARE`` of the height, centred on the
    faces."""
    ih, iw = image.shape[:2]
    aspect = width / height
    faces = _faces(image)
    if not faces:
        raise RuntimeError("no face found in a scene photograph")
    # The start: the largest window of the frame's aspect inside the photograph, centred.
    h0 = min(ih, iw / aspect)
    # The end: a window whose height makes the largest face END_FACE_SHARE of the frame.
    largest = max(b - t for _, t, _, b in faces)
    h1 = min(h0, largest / END_FACE_SHARE)
    cx1 = (min(f[0] for f in faces) + max(f[2] for f in faces)) / 2
    cy1 = (min(f[1] for f in faces) + max(f[3] for f in faces)) / 2
    frames = []
    for i in range(n):
        t = i / max(1, n - 1)
        t = t * t * (3 - 2 * t)  # ease in and out: a slow, smooth zoom
        h = h0 * (h1 / h0) ** t
        w = h * aspect
        cx = iw / 2 + (cx1 - iw / 2) * t
        cy = ih / 2 + (cy1 - ih / 2) * t
        x0 = float(np.clip(cx - w / 2, 0, iw - w))
        y0 = float(np.clip(cy - h / 2, 0, ih - h))
        # An affine crop-and-scale: sub-pixel windows, so the zoom has no jitter.
        s = width / w
        m = np.float32([[s, 0, -x0 * s], [0, s, -y0 * s]])
        frames.append(
            np.asarray(
                cv2.warpAffine(image, m, (width, height), flags=cv2.INTER_AREA),
                np.uint8,
            )
        )
    return frames


def build_zoom_clip(
    data: Path,
    dst: Path,
    *,
    width: int = 320,
    height: int = 240,
    fps: int = 25,
    seconds_per_scene: float = 1.0,
) -> Path:
    """Write the zoom clip to ``dst`` (H.264 mp4, no audio) and return ``dst``: one slow zoom
    per photograph of ``data/scenes``, ``seconds_per_scene`` each."""
    n = max(2, round(fps * seconds_per_scene))
    with av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps))
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for name in SCENES:
            image = cv2.cvtColor(cv2.imread(str(data / "scenes" / name)), cv2.COLOR_BGR2RGB)
            for pixels in _zoom_frames(image, width, height, n):
                frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
                for packet in stream.encode(frame):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return dst
