"""End to end on lfw10/pairs.csv: Visage against face_recognition's default pipeline.

face_recognition (HOG detector upsampled once, 5-point landmarks, dlib ResNet, Euclidean
tolerance 0.6) and Visage (CenterFace, dlib 5-point alignment, the ResNet on ONNX Runtime,
calibrated threshold) each embed the main face of every image once and then decide all
4,950 pairs, in this same process. Models are loaded and warmed up before timing.

    python bench/endtoend.py [--json]
    python bench/endtoend.py --process [--runs 3] [--json]

``--process`` times whole processes instead, as a user meets them: ``visage eval --pairs
lfw10/pairs.csv --root lfw10`` against a fresh Python script doing the same with
face_recognition's defaults (load_image_file, face_locations with HOG, face_encodings,
compare_faces), start-up and model loading included, alternately, ``--runs`` times each
after one untimed run of each (which fills the OS file cache and Visage's converted-model
cache, as any earlier use would). Medians are compared.

Needs ``face_recognition`` installed without its dlib dependency (``make bench-setup``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
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


FACE_RECOGNITION_SCRIPT = """
import csv, json, sys
from pathlib import Path

import face_recognition

root, pairs_csv = Path(sys.argv[1]), Path(sys.argv[2])
with pairs_csv.open() as fh:
    pairs = [(r["image_a"], r["image_b"], r["same"] == "1") for r in csv.DictReader(fh)]
encodings = {}
for name in sorted({a for a, _, _ in pairs} | {b for _, b, _ in pairs}):
    image = face_recognition.load_image_file(root / name)
    found = face_recognition.face_encodings(image, face_recognition.face_locations(image))
    encodings[name] = found[0] if found else None
correct = fta = 0
for a, b, same in pairs:
    if encodings[a] is None or encodings[b] is None:
        fta += 1
        continue
    correct += bool(face_recognition.compare_faces([encodings[a]], encodings[b])[0]) == same
print(json.dumps({"accuracy": correct / len(pairs), "failures_to_acquire": fta}))
"""
"""face_recognition's README way: default HOG detector (upsampled once), first face found,
``compare_faces`` at tolerance 0.6."""


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    """Wall-clock seconds of one fresh process, and the JSON it printed."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, errs = proc.communicate()
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{errs.decode()[-2000:]}")
    return elapsed, json.loads(out)


def process_run(
    root: Path, pairs_csv: Path, runs: int, detect_min_side: int | None = None
) -> dict[str, Any]:
    visage = str(Path(sys.executable).with_name("visage"))
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "face_recognition_eval.py"
        script.write_text(FACE_RECOGNITION_SCRIPT)
        env = {k: v for k, v in os.environ.items() if not k.startswith("VISAGE_")}
        # No data dir (eval needs none); the converted model cached as after any first use.
        env |= {"VISAGE_HOME": str(Path(tmp) / "home"), "VISAGE_CACHE_DIR": str(Path(tmp))}
        if detect_min_side is not None:  # the detection-scale lever, to measure it
            env["VISAGE_DETECT_MIN_SIDE"] = str(detect_min_side)
        commands = {
            "face_recognition": [sys.executable, str(script), str(root), str(pairs_csv)],
            "visage": [visage, "eval", "--pairs", str(pairs_csv), "--root", str(root), "--json"],
        }
        results: dict[str, dict[str, Any]] = {}
        for name, cmd in commands.items():  # untimed: file cache, converted model
            results[name] = _run(cmd, env)[1]
        walls: dict[str, list[float]] = {name: [] for name in commands}
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, cmd in commands.items():
                before = os.times()
                wall, _out = _run(cmd, env)
                after = os.times()
                walls[name].append(wall)
                cpus[name].append(
                    after.children_user
                    + after.children_system
                    - before.children_user
                    - before.children_system
                )
    out: dict[str, Any] = {"runs": runs, "detect_min_side": detect_min_side}
    for name in commands:
        out[name] = {
            "wall_s": round(statistics.median(walls[name]), 3),
            "cpu_s": round(statistics.median(cpus[name]), 3),
            "accuracy": results[name]["accuracy"],
            "failures_to_acquire": results[name]["failures_to_acquire"],
        }
    out["visage"] |= {"fmr": results["visage"]["fmr"], "fnmr": results["visage"]["fnmr"]}
    out["speedup"] = round(out["face_recognition"]["wall_s"] / out["visage"]["wall_s"], 2)
    out["speedup_cpu"] = round(out["face_recognition"]["cpu_s"] / out["visage"]["cpu_s"], 2)
    out["goal"] = 6.0
    return out


def main_process(
    root: Path, pairs_csv: Path, runs: int, as_json: bool, detect_min_side: int | None
) -> None:
    result = process_run(root, pairs_csv, runs, detect_min_side)
    fr, ours = result["face_recognition"], result["visage"]
    emit(
        result,
        as_json,
        [
            (
                "face_recognition",
                f"{fr['wall_s']:.2f} s wall ({fr['cpu_s']:.2f} s CPU), accuracy "
                f"{fr['accuracy']:.4f}, FTA {fr['failures_to_acquire']}",
            ),
            (
                "visage eval",
                f"{ours['wall_s']:.2f} s wall ({ours['cpu_s']:.2f} s CPU), accuracy "
                f"{ours['accuracy']:.4f}, FMR {ours['fmr']:.4f}, FNMR {ours['fnmr']:.4f}, "
                f"FTA {ours['failures_to_acquire']}",
            ),
            (
                "speed-up",
                f"{result['speedup']:.2f}x wall, {result['speedup_cpu']:.2f}x CPU "
                "(whole processes, medians of "
                f"{runs}; goal >= 6x)",
            ),
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--process", action="store_true", help="time whole fresh processes (see above)"
    )
    parser.add_argument("--runs", type=int, default=3, help="timed runs each, with --process")
    parser.add_argument(
        "--detect-min-side",
        type=int,
        default=None,
        help="with --process: Visage's VISAGE_DETECT_MIN_SIDE (default: the setting's, 320)",
    )
    args = parser.parse_args()
    root = data_dir() / "lfw10"
    pairs_csv = root / "pairs.csv"
    if args.process:
        main_process(root, pairs_csv, args.runs, args.json, args.detect_min_side)
        return
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
