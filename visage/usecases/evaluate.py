"""Verification accuracy on labelled pairs (``image_a,image_b,same``), with a DET curve.

Each distinct image is embedded once (its main face, as in ``verify``). A pair whose image
cannot be read or shows no face is a failure to acquire: it counts as an error in the
accuracy and as a non-match in the FNMR of genuine pairs (generalised FNMR); FMR is
measured over impostor pairs whose both images were acquired.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel

from visage.core import Visage
from visage.errors import InputError, VisageError
from visage.gallery.matching import calibrate_array
from visage.usecases.faces import primary_face

ProgressFn = Callable[[int, int], None]


class OperatingPoint(BaseModel):
    target_fmr: float
    threshold: float
    fmr: float
    fnmr: float


class EvalReport(BaseModel):
    pairs: int
    genuine: int
    impostor: int
    accuracy: float
    fmr: float
    fnmr: float
    threshold: float
    failures_to_acquire: int
    images: int
    images_without_face: list[str]
    operating_points: list[OperatingPoint]
    seconds: float
    plot: str | None = None


@dataclass(frozen=True, slots=True)
class Pair:
    a: str
    b: str
    same: bool


def read_pairs(path: Path) -> list[Pair]:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            need = {"image_a", "image_b", "same"}
            if reader.fieldnames is None or not need <= set(reader.fieldnames):
                raise InputError(f"{path}: header must contain image_a,image_b,same")
            pairs = []
            for line, row in enumerate(reader, start=2):
                flag = (row["same"] or "").strip().lower()
                if flag not in {"0", "1", "true", "false"}:
                    raise InputError(f"{path}:{line}: 'same' must be 0/1 or true/false")
                pairs.append(Pair(row["image_a"], row["image_b"], flag in {"1", "true"}))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a UTF-8 CSV file") from exc
    if not pairs:
        raise InputError(f"{path}: no pairs")
    return pairs


OVERLAP = 2
"""Images in flight at once. While one image is in ONNX Runtime (which releases the GIL and
runs on every core), the next is decoded, resized and aligned in Python and OpenCV; on a
2-core machine two in flight keep both cores busy (measured: ~25% less wall-clock time on
lfw10 than one at a time, the same CPU time, the same vectors)."""


def _main_embedding(core: Visage, path: Path) -> NDArray[np.float32] | None:
    try:
        loaded = core.load_image(path)
        face = primary_face(core.analyzer.analyze(loaded.pixels), loaded.width, loaded.height)
    except VisageError:
        return None
    return None if face is None else face.embedding


def embed_images(
    core: Visage, root: Path, names: list[str], progress: ProgressFn | None = None
) -> dict[str, NDArray[np.float32] | None]:
    """The main face's embedding of every image (None: unreadable, or no face), computed
    ``OVERLAP`` images at a time; ``progress(done, total)`` after each, in order."""
    out: dict[str, NDArray[np.float32] | None] = {}
    with ThreadPoolExecutor(OVERLAP, thread_name_prefix="visage-eval") as pool:
        vectors = pool.map(lambda name: _main_embedding(core, root / name), names)
        for i, (name, vector) in enumerate(zip(names, vectors, strict=True)):
            out[name] = vector
            if progress:
                progress(i + 1, len(names))
    return out


def threshold_for_fmr(impostor: NDArray[np.float64], target: float) -> float:
    """The lowest threshold whose FMR over ``impostor`` scores is at most ``target``."""
    if impostor.size == 0:
        return 0.0
    ranked = np.sort(impostor)[::-1]
    allowed = math.floor(target * ranked.size)
    if allowed >= ranked.size:
        return float(ranked[-1])
    return float(np.nextafter(ranked[allowed], np.inf))


def evaluate(
    core: Visage,
    pairs_csv: Path,
    root: Path,
    plot: Path | None = None,
    progress: ProgressFn | None = None,
) -> EvalReport:
    started = time.perf_counter()
    pairs = read_pairs(pairs_csv)
    names = sorted({p.a for p in pairs} | {p.b for p in pairs})
    vectors = embed_images(core, root, names, progress)
    same = np.array([p.same for p in pairs])
    acquired = np.array([vectors[p.a] is not None and vectors[p.b] is not None for p in pairs])
    cos = np.array(
        [
            float(vectors[p.a] @ vectors[p.b]) if ok else -1.0  # type: ignore[operator]
            for p, ok in zip(pairs, acquired, strict=True)
        ],
        dtype=np.float32,
    )
    scores = calibrate_array(cos)
    threshold = core.threshold
    match = acquired & (scores >= threshold)
    correct = (match == same) & acquired
    imp_scores = scores[acquired & ~same]
    gen_scores = scores[same]  # FTA genuine pairs score 0: always a non-match

    def fnmr_at(t: float) -> float:
        return float(np.mean(gen_scores < t)) if gen_scores.size else 0.0

    def fmr_at(t: float) -> float:
        return float(np.mean(imp_scores >= t)) if imp_scores.size else 0.0

    points = []
    for target in (1e-2, 1e-3):
        t = threshold_for_fmr(imp_scores, target)
        points.append(
            OperatingPoint(
                target_fmr=target,
                threshold=round(t, 6),
                fmr=round(fmr_at(t), 6),
                fnmr=round(fnmr_at(t), 6),
            )
        )
    report = EvalReport(
        pairs=len(pairs),
        genuine=int(same.sum()),
        impostor=int((~same).sum()),
        accuracy=round(float(correct.mean()), 6),
        fmr=round(fmr_at(threshold), 6),
        fnmr=round(fnmr_at(threshold), 6),
        threshold=threshold,
        failures_to_acquire=int((~acquired).sum()),
        images=len(names),
        images_without_face=[n for n in names if vectors[n] is None],
        operating_points=points,
        seconds=0.0,
    )
    if plot is not None:
        from visage.usecases.det_plot import draw_det

        draw_det(gen_scores, imp_scores, threshold, plot)
        report.plot = str(plot)
    report.seconds = round(time.perf_counter() - started, 2)
    remember(core, report, pairs_csv)
    return report


LAST_EVALUATION = "last_evaluation"


class StoredEvaluation(BaseModel):
    """The latest measurement, kept so that the DPIA pack can cite measured error rates."""

    measured_at: datetime
    dataset: str
    model: str
    report: EvalReport


def remember(core: Visage, report: EvalReport, pairs_csv: Path) -> None:
    """Keep the figures in the data dir, if there is one (eval also runs without)."""
    if not core.initialised:
        return
    from visage.store.meta import put_meta  # the store only where there is one

    stored = StoredEvaluation(
        measured_at=datetime.now(UTC),
        dataset=str(pairs_csv),
        model=core.analyzer.model_fingerprint(),
        report=report,
    )
    with core.store.session() as session:
        put_meta(session, LAST_EVALUATION, stored.model_dump_json().encode())


def last_evaluation(core: Visage) -> StoredEvaluation | None:
    from visage.store.meta import get_meta

    with core.store.session() as session:
        value = get_meta(session, LAST_EVALUATION)
    return None if value is None else StoredEvaluation.model_validate_json(value)
