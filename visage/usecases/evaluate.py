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
from visage.gallery.matching import (
    Calibration,
    OperatingRow,
    calibration_key,
    fit_fusion,
    fit_logistic,
)
from visage.usecases.faces import primary_detection

ProgressFn = Callable[[int, int], None]


class OperatingPoint(BaseModel):
    target_fmr: float
    threshold: float
    fmr: float
    fnmr: float


class GroupRates(BaseModel):
    """Error rates of one user-chosen group at the operating threshold (pairs whose two
    images are both in the group), and their ratio to the best group's."""

    group: str
    genuine: int
    impostor: int
    fmr: float
    fnmr: float
    fmr_ratio: float | None = None
    fnmr_ratio: float | None = None
    plot: str | None = None


class GroupReport(BaseModel):
    """NISTIR 8280-style differentials: FMR and FNMR per group, over the pairs within one
    group (pairs across groups are counted, not rated). The labels are the user's own."""

    threshold: float
    groups: list[GroupRates]
    cross_group_pairs: int
    unlabelled_pairs: int


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
    model: str = ""
    calibrated: bool = False
    fusion_weight: float | None = None
    """For a fused model (``A+B``) with ``calibrate``: the first model's weight that a
    two-feature logistic fit on these pairs gives. The weight is part of the embedding space:
    to use another one, migrate to ``A+B@W`` (``visage models migrate --to``)."""
    groups: GroupReport | None = None


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
    """The main face's vector; the other faces are found but neither aligned nor embedded
    (the main face is chosen by its box alone: the same face, the same vector)."""
    analyzer = core.analyzer
    try:
        loaded = core.load_image(path)
        found = analyzer.detector.detect(loaded.pixels, analyzer.options.detect_threshold)
        main = primary_detection(found, loaded.width, loaded.height)
        if main is None:
            return None
        return analyzer.describe(loaded.pixels, [main])[0].embedding
    except VisageError:
        return None


def embed_images(
    core: Visage, root: Path, names: list[str], progress: ProgressFn | None = None
) -> dict[str, NDArray[np.float32] | None]:
    """The main face's embedding of every image (None: unreadable, or no face), computed
    ``OVERLAP`` images at a time; ``progress(done, total)`` after each, in order."""
    out: dict[str, NDArray[np.float32] | None] = {}
    analyzer = core.analyzer
    with ThreadPoolExecutor(OVERLAP, thread_name_prefix="visage-eval") as pool:
        # One worker loads the aligner and the embedder while the other loads the detector
        # and detects the first image: ONNX Runtime builds a session without the GIL.
        warm = pool.submit(lambda: (analyzer.aligner.model, analyzer.embedder.model))
        vectors = pool.map(lambda name: _main_embedding(core, root / name), names)
        for i, (name, vector) in enumerate(zip(names, vectors, strict=True)):
            out[name] = vector
            if progress:
                progress(i + 1, len(names))
        warm.result()
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


CALIBRATION_TARGETS = (1e-2, 1e-3, 1e-4)
"""FMR targets a calibration's table holds thresholds for."""


def evaluate(
    core: Visage,
    pairs_csv: Path,
    root: Path,
    plot: Path | None = None,
    progress: ProgressFn | None = None,
    *,
    calibrate: bool = False,
    groups_csv: Path | None = None,
) -> EvalReport:
    """Accuracy, FMR and FNMR of the active model on labelled pairs. ``calibrate``: fit the
    model's score calibration on these pairs and store it (the threshold then follows the
    ``target_fmr`` setting). ``groups_csv``: the error rates per user-chosen group too."""
    started = time.perf_counter()
    pairs = read_pairs(pairs_csv)
    labels = read_groups(groups_csv, root) if groups_csv is not None else None
    if calibrate and not core.initialised:
        raise InputError("--calibrate stores the calibration in a data dir: run visage init")
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
    fusion_weight = None
    if calibrate:
        store_calibration(core, fit_calibration(core.model_id, cos, same, acquired, pairs_csv))
        fusion_weight = _fitted_fusion_weight(core, vectors, pairs, acquired)
    scores = core.calibration.scores(cos)
    scores[~acquired] = 0.0  # a failure to acquire never matches
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
        model=core.model_id,
        calibrated=calibrate,
        fusion_weight=fusion_weight,
    )
    if plot is not None:
        from visage.usecases.det_plot import draw_det

        draw_det(gen_scores, imp_scores, threshold, plot)
        report.plot = str(plot)
    if labels is not None:
        report.groups = group_rates(pairs, labels, scores, acquired, threshold, plot)
    report.seconds = round(time.perf_counter() - started, 2)
    remember(core, report, pairs_csv)
    return report


def _fitted_fusion_weight(
    core: Visage,
    vectors: dict[str, NDArray[np.float32] | None],
    pairs: list[Pair],
    acquired: NDArray[np.bool_],
) -> float | None:
    """The two-feature fit's weight for a fused model (None for a single one): each part's
    cosine is read back from the fused templates."""
    from visage.vision.fusion import FusedEmbedder

    embedder = core.analyzer.embedder
    if not isinstance(embedder, FusedEmbedder):
        return None
    kept = [p for p, ok in zip(pairs, acquired, strict=True) if ok]
    a_rows, b_rows = (np.stack([vectors[getattr(p, side)] for p in kept]) for side in "ab")  # type: ignore[misc]
    (a1, a2), (b1, b2) = embedder.split(a_rows), embedder.split(b_rows)
    same = np.array([p.same for p in kept])
    weight, _, _ = fit_fusion((a1 * b1).sum(axis=1), (a2 * b2).sum(axis=1), same)
    return round(weight, 4)


def fit_calibration(
    model_id: str,
    cos: NDArray[np.float32],
    same: NDArray[np.bool_],
    acquired: NDArray[np.bool_],
    pairs_csv: Path,
) -> Calibration:
    """The logistic fit on the acquired pairs, with its FMR/FNMR table (failures to acquire
    count as non-matches of the genuine pairs, as in the report)."""
    if not (acquired & same).any() or not (acquired & ~same).any():
        raise InputError(f"{pairs_csv}: calibration needs genuine and impostor pairs with faces")
    slope, intercept = fit_logistic(cos[acquired], same[acquired])
    fitted = Calibration(
        model_id=model_id,
        slope=slope,
        intercept=intercept,
        fitted_on=str(pairs_csv),
        fitted_at=datetime.now(UTC),
        genuine=int(same.sum()),
        impostor=int((acquired & ~same).sum()),
    )
    scores = fitted.scores(cos)
    scores[~acquired] = 0.0
    imp, gen = scores[acquired & ~same], scores[same]
    for target in CALIBRATION_TARGETS:
        t = threshold_for_fmr(imp, target)
        fitted.table.append(
            OperatingRow(
                target_fmr=target,
                threshold=round(t, 6),
                fmr=round(float(np.mean(imp >= t)), 6),
                fnmr=round(float(np.mean(gen < t)), 6),
            )
        )
    return fitted


def store_calibration(core: Visage, calibration: Calibration) -> None:
    """Keep ``calibration`` for its model (``meta``), audited with the stored evaluation."""
    from visage.store.meta import put_meta

    with core.store.session() as session:
        put_meta(
            session,
            calibration_key(calibration.model_id),
            calibration.model_dump_json().encode(),
        )
    core.calibration_changed()


def read_groups(path: Path, root: Path) -> dict[str, str]:
    """``image,group`` rows (image paths as in the pairs file). The labels are the user's:
    Visage never infers one."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    out: dict[str, str] = {}
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or not {"image", "group"} <= set(reader.fieldnames):
                raise InputError(f"{path}: header must contain image,group")
            for line, row in enumerate(reader, start=2):
                image, group = (row["image"] or "").strip(), (row["group"] or "").strip()
                if not image or not group:
                    raise InputError(f"{path}:{line}: image and group must not be empty")
                out[image] = group
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a UTF-8 CSV file") from exc
    if not out:
        raise InputError(f"{path}: no rows")
    return out


def group_rates(
    pairs: list[Pair],
    labels: dict[str, str],
    scores: NDArray[np.float64],
    acquired: NDArray[np.bool_],
    threshold: float,
    plot: Path | None,
) -> GroupReport:
    """FMR and FNMR per group at ``threshold``, the ratio of each to the best group's, and
    (with ``plot``) a DET curve per group beside it (``<plot>-<group><suffix>``)."""
    by_group: dict[str, list[int]] = {}
    cross = unlabelled = 0
    for i, p in enumerate(pairs):
        ga, gb = labels.get(p.a), labels.get(p.b)
        if ga is None or gb is None:
            unlabelled += 1
        elif ga != gb:
            cross += 1
        else:
            by_group.setdefault(ga, []).append(i)
    rows = []
    for group, idx in sorted(by_group.items()):
        at = np.array(idx)
        same = np.array([pairs[i].same for i in idx])
        gen = scores[at[same]]
        imp = scores[at[~same & acquired[at]]]
        row = GroupRates(
            group=group,
            genuine=int(gen.size),
            impostor=int(imp.size),
            fmr=round(float(np.mean(imp >= threshold)), 6) if imp.size else 0.0,
            fnmr=round(float(np.mean(gen < threshold)), 6) if gen.size else 0.0,
        )
        if plot is not None and gen.size and imp.size:
            from visage.usecases.det_plot import draw_det

            safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in group)
            target = plot.with_name(f"{plot.stem}-{safe}{plot.suffix}")
            draw_det(gen, imp, threshold, target)
            row.plot = str(target)
        rows.append(row)
    best_fmr = min((r.fmr for r in rows if r.impostor), default=0.0)
    best_fnmr = min((r.fnmr for r in rows if r.genuine), default=0.0)
    for r in rows:
        r.fmr_ratio = _ratio(r.fmr, best_fmr) if r.impostor else None
        r.fnmr_ratio = _ratio(r.fnmr, best_fnmr) if r.genuine else None
    return GroupReport(
        threshold=threshold, groups=rows, cross_group_pairs=cross, unlabelled_pairs=unlabelled
    )


def _ratio(value: float, best: float) -> float | None:
    """``value / best``; 1 when both are 0; None (unbounded) when only the best is 0."""
    if best > 0:
        return round(value / best, 3)
    return 1.0 if value == 0 else None


LAST_EVALUATION = "last_evaluation"
LAST_GROUP_EVALUATION = "last_group_evaluation"


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
        model=f"{core.model_id} ({core.analyzer.model_fingerprint()[:16]})",
        report=report,
    )
    with core.store.session() as session:
        put_meta(session, LAST_EVALUATION, stored.model_dump_json().encode())
        if report.groups is not None:  # kept apart: a later eval without groups keeps it
            put_meta(session, LAST_GROUP_EVALUATION, stored.model_dump_json().encode())


def last_evaluation(core: Visage) -> StoredEvaluation | None:
    from visage.store.meta import get_meta

    with core.store.session() as session:
        value = get_meta(session, LAST_EVALUATION)
    return None if value is None else StoredEvaluation.model_validate_json(value)


def last_group_evaluation(core: Visage) -> StoredEvaluation | None:
    """The latest evaluation run with ``--groups`` (its ``report.groups`` is set)."""
    from visage.store.meta import get_meta

    with core.store.session() as session:
        value = get_meta(session, LAST_GROUP_EVALUATION)
    return None if value is None else StoredEvaluation.model_validate_json(value)
