"""Embedding models side by side: dlib's ResNet, OpenCV's SFace, and their score fusion.

Each image is decoded and its faces detected once (CenterFace, shared); each model then
aligns (dlib's 150x150 chip, or ArcFace's 112x112 from the landmarks; the fusion both) and
embeds the main face (as ``visage eval`` picks it). The fusion is the real fused embedder a
deployment selects (``VISAGE_EMBEDDER=dlib-resnet+sface``: one 256-d template whose cosine
is 0.13 dlib + 0.87 SFace, see ``visage/vision/fusion.py``), not a formula over the others'
scores. Scores are each model's calibrated score (its built-in logistic fit).

* ``lfw10``: the 4,950 pairs of ``lfw10/pairs.csv``: accuracy at the model's operating
  threshold (dlib: 0.925; SFace and the fusion: their built-in threshold for FMR 1e-3), FNMR
  at FMR 1e-3 (the threshold measured on these impostor pairs), failures to acquire, and time
  per face (alignment + embedding, the median over the images; detection is the same for
  every model and reported once), with its ratio to dlib's measured in the same run. The
  rule: the fusion would become the default only if it lowered dlib's FNMR at FMR 1e-3
  without doubling dlib's time per face (``fusion_rule``).
* ``hard``: the photos of ``hard/`` (Obama at 240p..1080p, tiny, partly hidden; an RGBA PNG)
  against ``people/``: genuine pairs with ``people/barack_obama``, impostor pairs with everyone
  else; failures to acquire, FNMR and FMR at the operating threshold.

    python bench/models.py [--json]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _common import data_dir, emit

from visage.gallery.matching import DEFAULT_THRESHOLD, built_in_calibration
from visage.media.image import read_image_file
from visage.usecases.evaluate import threshold_for_fmr
from visage.usecases.faces import primary_face
from visage.vision.align import FaceAligner, arcface_chip
from visage.vision.detect import CenterFaceDetector
from visage.vision.embedders import Embedder, make_embedder
from visage.vision.fusion import alignments_of, embed_aligned
from visage.vision.quality import measure
from visage.vision.types import Face

MODELS = ("dlib-resnet", "sface", "dlib-resnet+sface")


@dataclass
class Embedded:
    vectors: dict[str, dict[str, np.ndarray | None]] = field(default_factory=dict)
    embed_ms: dict[str, list[float]] = field(default_factory=dict)
    detect_ms: list[float] = field(default_factory=list)


def embed_all(paths: dict[str, Path], embedders: dict[str, Embedder]) -> Embedded:
    detector, aligner = CenterFaceDetector(), FaceAligner()
    out = Embedded({m: {} for m in embedders}, {m: [] for m in embedders})
    for name, path in paths.items():
        try:
            pixels = read_image_file(path, max_pixels=10**8, max_bytes=10**9).pixels
        except Exception:
            for m in embedders:
                out.vectors[m][name] = None
            continue
        t = time.perf_counter()
        detections = detector.detect(pixels)
        out.detect_ms.append((time.perf_counter() - t) * 1000)
        h, w = pixels.shape[:2]
        faces = [Face(d, measure(d, None)) for d in detections]
        main = primary_face(faces, w, h)
        for m, embedder in embedders.items():
            if main is None:
                out.vectors[m][name] = None
                continue
            t = time.perf_counter()
            box, marks = main.detection.box, main.detection.landmarks
            chips: dict[str, list[np.ndarray]] = {}
            if "dlib150" in alignments_of(embedder):
                chips["dlib150"] = [aligner.chip(pixels, box)]
            if "arcface112" in alignments_of(embedder):
                chips["arcface112"] = [arcface_chip(pixels, marks)]
            vector = embed_aligned(embedder, chips)[0]
            out.embed_ms[m].append((time.perf_counter() - t) * 1000)
            out.vectors[m][name] = vector
    return out


def scores_of(
    model: str, vectors: dict[str, dict[str, np.ndarray | None]], pairs: list[tuple[str, str]]
) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated scores of ``pairs`` for a model (its built-in calibration), and which were
    acquired."""
    got = vectors[model]
    acquired = np.array([got[a] is not None and got[b] is not None for a, b in pairs])
    cos = np.array(
        [
            float(got[a] @ got[b]) if ok else -1.0  # type: ignore[operator]
            for (a, b), ok in zip(pairs, acquired, strict=True)
        ],
        dtype=np.float32,
    )
    scores = built_in_calibration(make_embedder(model).name).scores(cos)
    scores[~acquired] = 0.0
    return scores, acquired


def operating_threshold(model: str) -> float:
    """The threshold a deployment uses: dlib's default; for SFace and the fusion, their
    built-in calibration's row for FMR 1e-3."""
    if model == "dlib-resnet":
        return DEFAULT_THRESHOLD
    found = built_in_calibration(make_embedder(model).name).threshold_for(1e-3)
    assert found is not None
    return found


def lfw(root: Path, models: tuple[str, ...]) -> dict[str, Any]:
    rows = list(csv.DictReader((root / "lfw10/pairs.csv").open()))
    pairs = [(r["image_a"], r["image_b"]) for r in rows]
    same = np.array([r["same"] == "1" for r in rows])
    names = sorted({n for p in pairs for n in p})
    embedders = {m: make_embedder(m) for m in MODELS}
    embedded = embed_all({n: root / "lfw10" / n for n in names}, embedders)
    detect = statistics.median(embedded.detect_ms)
    out: dict[str, Any] = {}
    for model in models:
        scores, acquired = scores_of(model, embedded.vectors, pairs)
        imp, gen = scores[acquired & ~same], scores[same]
        t = operating_threshold(model)
        t3 = threshold_for_fmr(imp, 1e-3)
        per_face = statistics.median(embedded.embed_ms[model])
        out[model] = {
            "accuracy": round(float(np.mean(((scores >= t) & acquired) == same)), 4),
            "threshold": round(t, 6),
            "fmr": round(float(np.mean(imp >= t)), 5),
            "fnmr": round(float(np.mean(gen < t)), 5),
            "fnmr_at_fmr_1e-3": round(float(np.mean(gen < t3)), 5),
            "failures_to_acquire": int(sum(embedded.vectors[model][n] is None for n in names)),
            "align_embed_ms_per_face": round(per_face, 2),
            "detect_ms_per_image": round(detect, 2),
        }
    return out


def hard(root: Path, models: tuple[str, ...], thresholds: dict[str, float]) -> dict[str, Any]:
    """``thresholds``: each model's operating threshold, as set on lfw10."""
    probes = {f"hard/{p.name}": p for p in sorted((root / "hard").iterdir()) if p.is_file()}
    refs = {
        f"people/{p.parent.name}/{p.name}": p for p in sorted((root / "people").glob("*/*.jpg"))
    }
    embedders = {m: make_embedder(m) for m in MODELS}
    embedded = embed_all({**probes, **refs}, embedders)
    pairs = [(p, r) for p in probes for r in refs]
    same = np.array([r.startswith("people/barack_obama/") for _, r in pairs])
    obama = [p for p in probes if Path(p).name.startswith("obama")]
    out: dict[str, Any] = {}
    for model in models:
        scores, acquired = scores_of(model, embedded.vectors, pairs)
        imp = scores[acquired & ~same]
        t = thresholds[model]
        is_obama = np.array([p in obama for p, _ in pairs])
        gen = scores[same & is_obama]
        out[model] = {
            "probes": len(probes),
            "failures_to_acquire": [p for p in probes if embedded.vectors[model][p] is None],
            "genuine_pairs": int(gen.size),
            "impostor_pairs": int(imp.size),
            "fnmr": round(float(np.mean(gen < t)), 4),
            "fmr": round(float(np.mean(imp >= t)), 5),
            "threshold": round(t, 4),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    root = data_dir()
    models = MODELS
    on_lfw = lfw(root, models)
    thresholds = {m: float(on_lfw[m]["threshold"]) for m in models}
    base = on_lfw["dlib-resnet"]
    for model in models:
        ratio = on_lfw[model]["align_embed_ms_per_face"] / base["align_embed_ms_per_face"]
        on_lfw[model]["time_ratio_to_dlib"] = round(ratio, 2)
    fused = on_lfw["dlib-resnet+sface"]
    rule = {
        "lowers_fnmr_at_fmr_1e-3": fused["fnmr_at_fmr_1e-3"] < base["fnmr_at_fmr_1e-3"],
        "less_than_twice_the_time": fused["time_ratio_to_dlib"] < 2.0,
    }
    rule["fusion_becomes_default"] = all(rule.values())
    result = {"lfw10": on_lfw, "hard": hard(root, models, thresholds), "fusion_rule": rule}
    rows: list[tuple[str, str]] = []
    for model in models:
        a, h = result["lfw10"][model], result["hard"][model]
        rows.append(
            (
                f"{model} lfw10",
                f"accuracy {a['accuracy']:.4f} at {a['threshold']} (FMR {a['fmr']}, FNMR "
                f"{a['fnmr']}), FNMR@FMR1e-3 {a['fnmr_at_fmr_1e-3']}, FTA "
                f"{a['failures_to_acquire']}, align+embed {a['align_embed_ms_per_face']} ms/face "
                f"(x{a['time_ratio_to_dlib']} dlib's) "
                f"(+ detect {a['detect_ms_per_image']} ms/image)",
            )
        )
        rows.append(
            (
                f"{model} hard",
                f"FTA {len(h['failures_to_acquire'])}/{h['probes']} {h['failures_to_acquire']}, "
                f"FNMR {h['fnmr']} ({h['genuine_pairs']} pairs), FMR {h['fmr']} "
                f"({h['impostor_pairs']} pairs)",
            )
        )
    rows.append(("fusion rule", ", ".join(f"{k} {v}" for k, v in rule.items())))
    emit(result, args.json, rows)


if __name__ == "__main__":
    main()
