"""End to end on lfw10/pairs.csv: Visage against face_recognition's default pipeline.

face_recognition (HOG detector upsampled once, 5-point landmarks, dlib ResNet, Euclidean
tolerance 0.6) and Visage (CenterFace, dlib 5-point alignment, the ResNet on ONNX Runtime,
calibrated threshold) each embed the main face of every image once and then decide all
4,950 pairs, in this same process. Models are loaded and warmed up before timing.

    python bench/endtoend.py [--json]

Needs ``face_recognition`` installed without its dlib dependency (``make bench-setup``).
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import data_dir, emit

from visage.config import Settings
from visage.core import Visage
from visage.usecases.evaluate import evaluate
from visage.usecases.setup import init


def central(boxes: list[tuple[int, int, int, int]], width: int, height: int) -> int:
    """Same rule as Visage's primary_face: largest-ish, nearest the centre."""
    areas = [(b - t) * (r - lft) for t, r, b, lft in boxes]
    big = max(areas)

    def off(i: int) -> float:
        t, r, b, lft = boxes[i]
        return ((lft + r) / 2 - width / 2) ** 2 + ((t + b) / 2 - height / 2) ** 2

    return min((i for i, a in enumerate(areas) if a >= big / 2), key=off)


def face_recognition_run(root: Path, pairs: list[tuple[str, str, bool]]) -> dict[str, Any]:
    import face_recognition

    names = sorted({a for a, _, _ in pairs} | {b for _, b, _ in pairs})
    warm = face_recognition.load_image_file(root / names[0])
    face_recognition.face_encodings(warm, face_recognition.face_locations(warm, 1))
    t0 = time.perf_counter()
    vectors: dict[str, np.ndarray | None] = {}
    for name in names:
        img = face_recognition.load_image_file(root / name)
        boxes = face_recognition.face_locations(img, number_of_times_to_upsample=1, model="hog")
        if not boxes:
            vectors[name] = None
            continue
        pick = boxes[central(boxes, img.shape[1], img.shape[0])]
        vectors[name] = face_recognition.face_encodings(img, [pick], model="small")[0]
    correct = fta = 0
    for a, b, same in pairs:
        va, vb = vectors[a], vectors[b]
        if va is None or vb is None:
            fta += 1
            continue
        match = bool(face_recognition.face_distance([va], vb)[0] <= 0.6)
        correct += match == same
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "accuracy": correct / len(pairs),
        "failures_to_acquire": fta,
        "images": len(names),
    }


def visage_run(root: Path, pairs_csv: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as home:
        app = Visage(Settings(home=Path(home)))
        init(app)
        warm = app.load_image(next(root.glob("*/*.jpg")))
        app.analyzer.analyze(warm.pixels)
        t0 = time.perf_counter()
        report = evaluate(app, pairs_csv, root)
        seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "accuracy": report.accuracy,
        "failures_to_acquire": report.failures_to_acquire,
        "images": report.images,
        "fmr": report.fmr,
        "fnmr": report.fnmr,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    root = data_dir() / "lfw10"
    pairs_csv = root / "pairs.csv"
    with pairs_csv.open() as fh:
        pairs = [(r["image_a"], r["image_b"], r["same"] == "1") for r in csv.DictReader(fh)]
    baseline = face_recognition_run(root, pairs)
    ours = visage_run(root, pairs_csv)
    ratio = baseline["seconds"] / ours["seconds"]
    result = {
        "pairs": len(pairs),
        "face_recognition": baseline,
        "visage": ours,
        "speedup": round(ratio, 2),
    }
    emit(
        result,
        args.json,
        [
            ("pairs", str(len(pairs))),
            (
                "face_recognition",
                f"{baseline['seconds']:.2f} s, accuracy {baseline['accuracy']:.4f},"
                f" FTA {baseline['failures_to_acquire']}",
            ),
            (
                "visage",
                f"{ours['seconds']:.2f} s, accuracy {ours['accuracy']:.4f},"
                f" FTA {ours['failures_to_acquire']}",
            ),
            ("speed-up", f"{ratio:.2f}x (visage vs face_recognition, same process)"),
        ],
    )


if __name__ == "__main__":
    main()
