"""Detector scale policy: recall on the shared images against detection time.

Every image of ../shared/faces (lfw10, people, scenes, hard) has a known number of faces
that matter: one in each portrait (LFW's central face, the person of people/, the face in
hard/ at every resolution, partial faces included) and all the people of scenes/. For each
policy (longer side capped at MAX, shorter side raised to MIN) we count the faces found
(at most the expected number per image) and time detection alone.

    python bench/detector.py [--json]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from _common import data_dir, emit

from visage.media.image import RGBImage, read_image_file
from visage.vision.detect import CenterFaceDetector, ScalePolicy

SCENE_FACES = {"two_people.jpg": 2, "kit_with_rose.jpg": 2, "obama_and_biden.jpg": 3}
POLICIES = [
    (640, 1),
    (960, 1),
    (1280, 1),
    (1920, 1),
    (640, 320),
    (1280, 320),
    (1280, 480),
    (1920, 480),
]


SMALL_FACE_PX = (20, 28, 40, 56)


def small_faces(root: Path) -> list[tuple[str, RGBImage, int]]:
    """Synthetic far-away faces: the 1080p portrait shrunk so the face is N px wide, pasted
    four times into a 1920x1080 frame of the same photo's blurred background."""
    import cv2
    import numpy as np

    src = read_image_file(root / "hard/obama_1080p.jpg", max_pixels=10**8, max_bytes=10**9).pixels
    face_w = 260  # the face box is about 260 px wide in obama_1080p.jpg
    items = []
    for px in SMALL_FACE_PX:
        frame = cv2.GaussianBlur(src, (0, 0), 25)
        scale = px / face_w
        small = cv2.resize(src, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        h, w = small.shape[:2]
        for x, y in [(100, 100), (900, 200), (300, 700), (1500, 800)]:
            frame[y : y + h, x : x + w] = small
        items.append((f"synthetic/{px}px", np.ascontiguousarray(frame), 4))
    return items


def load_set(root: Path) -> list[tuple[str, RGBImage, int]]:
    items = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in {".jpg", ".png"}:
            continue
        expected = SCENE_FACES.get(path.name, 1)
        pixels = read_image_file(path, max_pixels=10**8, max_bytes=10**9).pixels
        items.append((str(path.relative_to(root)), pixels, expected))
    return items


def run_policy(
    items: list[tuple[str, RGBImage, int]], max_side: int, min_side: int
) -> dict[str, Any]:
    detector = CenterFaceDetector(ScalePolicy(max_side=max_side, min_side=min_side))
    detector.detect(items[0][1])
    found = expected = 0
    missed: list[str] = []
    t0 = time.perf_counter()
    for name, pixels, n in items:
        k = min(len(detector.detect(pixels)), n)
        found += k
        expected += n
        if k < n:
            missed.append(name)
    seconds = time.perf_counter() - t0
    return {
        "max_side": max_side,
        "min_side": min_side,
        "recall": found / expected,
        "ms_per_image": 1000 * seconds / len(items),
        "missed": missed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    items = load_set(data_dir())
    far = small_faces(data_dir())
    results = [run_policy(items, mx, mn) for mx, mn in POLICIES]
    for r, (mx, mn) in zip(results, POLICIES, strict=True):
        small = run_policy(far, mx, mn)
        r["small_face_recall"] = small["recall"]
        r["small_faces_missed"] = small["missed"]
    base = results[0]["ms_per_image"]
    rows = [("policy (max/min side)", "recall   ms/image  vs 640/-  far-face recall  missed")]
    for r in results:
        rows.append(
            (
                f"{r['max_side']}/{r['min_side'] if r['min_side'] > 1 else '-'}",
                f"{r['recall']:.4f}  {r['ms_per_image']:8.1f}  {r['ms_per_image'] / base:6.2f}x"
                f"  {r['small_face_recall']:15.3f}"
                f"  {', '.join(r['missed'] + r['small_faces_missed']) or '-'}",
            )
        )
    rows.append(
        (
            "far faces",
            f"{len(far)} frames of 1920x1080 with 4 faces "
            f"{'/'.join(map(str, SMALL_FACE_PX))} px wide",
        )
    )
    emit({"images": len(items), "policies": results}, args.json, rows)


if __name__ == "__main__":
    main()
