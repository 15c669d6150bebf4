"""DET curve (FNMR against FMR, log axes) with matplotlib, written to a PNG or SVG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray


def det_points(
    genuine: NDArray[np.float64], impostor: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    thresholds = np.unique(np.concatenate([genuine, impostor]))
    fmr = np.array([np.mean(impostor >= t) for t in thresholds])
    fnmr = np.array([np.mean(genuine < t) for t in thresholds])
    return fmr, fnmr


def draw_det(
    genuine: NDArray[np.float64], impostor: NDArray[np.float64], threshold: float, out: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fmr, fnmr = det_points(genuine, impostor)
    floor = 1.0 / max(len(impostor), len(genuine), 1) / 2
    fig, ax = plt.subplots(figsize=(6, 5), dpi=100)
    ax.plot(np.maximum(fmr, floor), np.maximum(fnmr, floor), lw=2, label="Visage")
    op_fmr = float(np.mean(impostor >= threshold)) if impostor.size else 0.0
    op_fnmr = float(np.mean(genuine < threshold)) if genuine.size else 0.0
    ax.plot(
        [max(op_fmr, floor)],
        [max(op_fnmr, floor)],
        "o",
        color="crimson",
        label=f"threshold {threshold:.3f}: FMR {op_fmr:.4f}, FNMR {op_fnmr:.4f}",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("False match rate (FMR)")
    ax.set_ylabel("False non-match rate (FNMR)")
    ax.set_title("DET curve")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
