"""Anonymisation of a video: Visage against deface, side by side, with an independent judge.

Both tools anonymise ``video/hamilton_clip.mp4`` (deface with its defaults, run from its own
environment; Visage in this process, models warmed up first). Then dlib's HOG face detector,
upsampled once — a different detector from the CenterFace model both tools use — counts the
faces still detectable in every frame of each output (and of the original, for scale).

    python bench/anonymize.py [--deface PATH] [--json]

``--deface`` is the deface executable (default: ``.venv-deface/bin/deface``, made by
``make bench-setup``; deface needs its own environment for its opencv-python).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import REPO, data_dir, emit

from visage.config import Settings
from visage.core import Visage
from visage.media.video import VideoReader, VideoWriter
from visage.usecases.anonymize import anonymize
from visage.usecases.setup import init

HEAD = 30


def faces_left(path: Path) -> tuple[int, int]:
    """(faces found by HOG upsampled once, frames with at least one)."""
    import dlib

    hog = dlib.get_frontal_face_detector()
    total = frames = 0
    with VideoReader(str(path)) as reader:
        for frame in reader.frames():
            n = len(hog(np.ascontiguousarray(frame.pixels), 1))
            total += n
            frames += n > 0
    return total, frames


def _head(clip: Path, out: Path, n: int) -> None:
    """The first ``n`` frames of ``clip``: to time deface's start-up on its own."""
    with VideoReader(str(clip)) as reader:
        writer = VideoWriter(out, reader)
        for frame in reader.frames():
            if frame.index >= n:
                break
            writer.write(frame.pixels)
        writer.close()


def _deface(exe: str, src: Path, dst: Path) -> float:
    t = time.perf_counter()
    subprocess.run([exe, str(src), "-o", str(dst), "--keep-audio"], check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deface", default=str(REPO / ".venv-deface" / "bin" / "deface"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    clip = data_dir() / "video" / "hamilton_clip.mp4"
    with VideoReader(str(clip)) as r:
        n_frames = sum(1 for _ in r.frames())
    with tempfile.TemporaryDirectory() as tmp:
        out_deface = Path(tmp) / "deface.mp4"
        deface_s = _deface(args.deface, clip, out_deface)
        head = Path(tmp) / "head.mp4"
        _head(clip, head, HEAD)
        deface_head_s = _deface(args.deface, head, Path(tmp) / "head-out.mp4")
        deface_steady_fps = (n_frames - HEAD) / max(1e-6, deface_s - deface_head_s)

        app = Visage(Settings(home=Path(tmp) / "home"))
        init(app)
        warm = Path(tmp) / "warm.jpg"
        shutil.copy(data_dir() / "scenes" / "two_people.jpg", warm)
        anonymize(app, warm, Path(tmp) / "warm-out.jpg")  # load the models before timing
        out_visage = Path(tmp) / "visage.mp4"
        t = time.perf_counter()
        report = anonymize(app, clip, out_visage)
        visage_s = time.perf_counter() - t

        original = faces_left(clip)
        left_deface = faces_left(out_deface)
        left_visage = faces_left(out_visage)
    result: dict[str, Any] = {
        "frames": n_frames,
        "deface_s": round(deface_s, 2),
        "deface_fps": round(n_frames / deface_s, 2),
        "visage_s": round(visage_s, 2),
        "visage_fps": round(n_frames / visage_s, 2),
        "speed_ratio": round(deface_s / visage_s, 2),
        "deface_steady_fps": round(deface_steady_fps, 2),
        "speed_ratio_steady": round((n_frames / visage_s) / deface_steady_fps, 2),
        "reference_faces_in_original": original[0],
        "reference_frames_with_faces_in_original": original[1],
        "faces_left_deface": left_deface[0],
        "faces_left_visage": left_visage[0],
        "visage_regions_masked": report.faces_masked,
    }
    emit(
        result,
        args.json,
        [
            ("frames", str(n_frames)),
            ("deface", f"{result['deface_fps']} fps ({deface_s:.1f} s, process start included)"),
            ("visage", f"{result['visage_fps']} fps ({visage_s:.1f} s, models warm)"),
            ("speed ratio", f"{result['speed_ratio']}x deface"),
            (
                "deface without start-up",
                f"{result['deface_steady_fps']} fps (run on {HEAD} frames subtracted)",
            ),
            ("speed ratio, steady", f"{result['speed_ratio_steady']}x deface"),
            ("faces in original (HOG x1)", f"{original[0]} in {original[1]} frames"),
            ("faces left: deface", str(left_deface[0])),
            ("faces left: visage", str(left_visage[0])),
        ],
    )


if __name__ == "__main__":
    main()
