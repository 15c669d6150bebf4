"""Anonymisation of video: Visage against deface, side by side, judged on every frame by an
independent judge.

Two clips: ``video/hamilton_clip.mp4`` (small faces, 640x360) and a zoom clip built here at
1280x720 from ``scenes/`` (large, close faces; see tests/zoom_clip.py). Both tools anonymise
both (deface with its defaults, run from its own environment; Visage in this process, models
warmed up first). Then dlib judges every frame of each output against the original (see
tests/mask_judge.py):

- *found*: faces dlib's HOG detector, upsampled once — a different detector from the
  CenterFace model both tools use — still finds in the masked frame;
- *re-identifiable*: faces of the original whose dlib descriptor, computed on the masked frame
  at the original's landmarks, is within 0.6 of the original's.

    python bench/anonymize.py [--deface PATH] [--seconds-per-scene S] [--workers N]
                              [--clip hamilton|zoom-720p] [--no-judge] [--stages] [--json]

``--no-judge`` times the tools only (a quick run while tuning; the safety figures need the
judge). ``--stages`` also prints where Visage's time goes on each clip (decode, detect,
track, mask, encode), measured in a second, instrumented run.

``--deface`` is the deface executable (default: ``.venv-deface/bin/deface``, made by
``make bench-setup``; deface needs its own environment for its opencv-python).
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from _common import REPO, data_dir, emit

sys.path.insert(0, str(REPO))  # the judge and the clip builder live with the tests

from tests.mask_judge import Verdict, judge_outputs
from tests.zoom_clip import build_zoom_clip
from visage.config import Settings
from visage.core import Visage
from visage.media import redact
from visage.media.redact import VideoRedactor
from visage.media.tracking import IouTracker
from visage.media.video import VideoReader, VideoWriter
from visage.usecases.anonymize import anonymize
from visage.vision.detect import CenterFaceDetector

HEAD = 30


def _loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip() if Path("/proc/loadavg").exists() else "?"


CLIPS = ("hamilton", "zoom-720p")


def _frames(path: Path) -> list[Any]:
    with VideoReader(str(path)) as reader:
        return [f.pixels for f in reader.frames()]


def judge(original: Path, outputs: list[Path], workers: int) -> list[dict[str, Any]]:
    """Every frame of each output against the frame of ``original`` shown at the same time:
    totals of faces found, frames with one, re-identifiable faces, frames with one, and the
    nearest distance. (deface's writer may repeat frames: 300 out of Hamilton's 275, so
    frames are paired by their place in time, not by their index.)"""
    before = _frames(original)
    n = len(before)
    jobs: dict[int, list[tuple[int, int, Any]]] = {}
    counts = []
    for k, path in enumerate(outputs):
        frames = _frames(path)
        counts.append(len(frames))
        for i, pixels in enumerate(frames):
            j = min(n - 1, (i * n) // len(frames))
            jobs.setdefault(j, []).append((k, i, pixels))
    order = sorted(jobs)
    work = [(before[j], [pixels for _, _, pixels in jobs[j]]) for j in order]
    per: list[list[tuple[int, Verdict]]] = [[] for _ in outputs]
    with ProcessPoolExecutor(workers) as pool:
        for j, verdicts in zip(order, pool.map(judge_outputs, work, chunksize=2), strict=True):
            for (k, i, _), verdict in zip(jobs[j], verdicts, strict=True):
                per[k].append((i, verdict))
    results = []
    for k in range(len(outputs)):
        judged = sorted(per[k], key=lambda iv: iv[0])
        distances = [d for _, v in judged for d in v.distances]
        results.append(
            {
                "frames_judged": len(judged),
                "reference_faces": sum(v.faces_in_original for _, v in judged),
                "found": sum(v.found for _, v in judged),
                "frames_found": [i for i, v in judged if v.found],
                "reidentifiable": sum(v.reidentifiable for _, v in judged),
                "frames_reidentifiable": [i for i, v in judged if v.reidentifiable],
                "nearest_distance": round(min(distances), 3) if distances else None,
                "judge_noise": sum(v.judge_noise for _, v in judged),
            }
        )
    return results


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


def run_clip(
    name: str, clip: Path, app: Visage, args: argparse.Namespace, tmp: Path
) -> dict[str, Any]:
    n_frames = len(_frames(clip))
    out_deface = tmp / f"{name}-deface.mp4"
    head = tmp / f"{name}-head.mp4"
    _head(clip, head, HEAD)
    out_visage = tmp / f"{name}-visage.mp4"
    # Interleaved rounds, medians: the machine's load changes between runs.
    times: dict[str, list[float]] = {"deface": [], "deface_head": [], "visage": []}
    for _ in range(args.repeat):
        times["deface"].append(_deface(args.deface, clip, out_deface))
        times["deface_head"].append(_deface(args.deface, head, tmp / f"{name}-head-out.mp4"))
        t = time.perf_counter()
        report = anonymize(app, clip, out_visage)
        times["visage"].append(time.perf_counter() - t)
    deface_s, deface_head_s, visage_s = (statistics.median(v) for v in times.values())
    deface_steady_fps = (n_frames - HEAD) / max(1e-6, deface_s - deface_head_s)
    empty: dict[str, Any] = {}
    visage, deface = (
        judge(clip, [out_visage, out_deface], args.workers) if args.judge else (empty, empty)
    )
    return {
        "clip": name,
        "frames": n_frames,
        "runs": args.repeat,
        "deface_fps": round(n_frames / deface_s, 2),
        "deface_steady_fps": round(deface_steady_fps, 2),
        "visage_fps": round(n_frames / visage_s, 2),
        "speed_ratio": round(deface_s / visage_s, 2),
        "speed_ratio_steady": round((n_frames / visage_s) / deface_steady_fps, 2),
        "visage_regions_masked": report.faces_masked,
        "visage_stages_ms_per_frame": stages(app, clip, tmp) if args.stages else None,
        "visage": visage,
        "deface": deface,
        "seconds": {k: [round(x, 2) for x in v] for k, v in times.items()},
    }


def stages(app: Visage, clip: Path, tmp: Path) -> dict[str, float]:
    """Milliseconds per frame in each stage of Visage's anonymisation, from one timed run:
    decode (on its own thread, overlapping the rest), detect, track, mask, encode (the
    encoder's own threads overlap the rest too)."""
    spent: dict[str, float] = dict.fromkeys(("decode", "detect", "track", "mask", "encode"), 0.0)
    frames = 0

    def timed(stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[stage] += time.perf_counter() - t

        return call

    def counted(fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*a: Any, **k: Any) -> Any:
            nonlocal frames
            frames += 1
            return fn(*a, **k)

        return call

    def decoded(fn: Callable[..., Any]) -> Callable[..., Any]:
        def items(self: VideoReader) -> Any:
            it = fn(self)
            while True:
                t = time.perf_counter()
                item = next(it, None)
                spent["decode"] += time.perf_counter() - t
                if item is None:
                    return
                yield item

        return items

    Wrap = Callable[[Callable[..., Any]], Callable[..., Any]]
    patches: list[tuple[object, str, Wrap]] = [
        (CenterFaceDetector, "detect", functools.partial(timed, "detect")),
        (IouTracker, "update", functools.partial(timed, "track")),
        (VideoRedactor, "process", counted),
        (redact, "mask_faces", functools.partial(timed, "mask")),
        (VideoWriter, "write", functools.partial(timed, "encode")),
        (VideoWriter, "close", functools.partial(timed, "encode")),
        (VideoReader, "items", decoded),
    ]
    saved = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in patches]
    try:
        for owner, attr, wrap in patches:
            setattr(owner, attr, wrap(getattr(owner, attr)))
        t = time.perf_counter()
        anonymize(app, clip, tmp / "stages.mp4")
        total = time.perf_counter() - t
    finally:
        for owner, attr, original in saved:
            setattr(owner, attr, original)
    result = {k: round(1000 * v / max(1, frames), 1) for k, v in spent.items()}
    result["total"] = round(1000 * total / max(1, frames), 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deface", default=str(REPO / ".venv-deface" / "bin" / "deface"))
    parser.add_argument("--seconds-per-scene", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--clip", choices=CLIPS, action="append", help="default: both")
    parser.add_argument("--no-judge", dest="judge", action="store_false")
    parser.add_argument("--stages", action="store_true")
    parser.add_argument("--repeat", type=int, default=1, help="timed rounds (medians)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    data = data_dir()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        paths = {"hamilton": data / "video" / "hamilton_clip.mp4"}
        if "zoom-720p" in (args.clip or CLIPS):
            paths["zoom-720p"] = build_zoom_clip(
                data,
                tmp / "zoom.mp4",
                width=1280,
                height=720,
                seconds_per_scene=args.seconds_per_scene,
            )
        # No data dir: plain masking, as on a fresh install (nothing is audited).
        app = Visage(Settings(home=tmp / "no-home"))
        warm = tmp / "warm.jpg"
        shutil.copy(data / "scenes" / "two_people.jpg", warm)
        anonymize(app, warm, tmp / "warm-out.jpg")  # load the models before timing
        clips = [run_clip(name, paths[name], app, args, tmp) for name in args.clip or CLIPS]
    rows: list[tuple[str, str]] = []
    for c in clips:
        n = c["clip"]
        rows += [
            (f"{n}: frames", str(c["frames"])),
            (
                f"{n}: fps visage / deface",
                f"{c['visage_fps']} / {c['deface_fps']} "
                f"({c['speed_ratio']}x; steady {c['speed_ratio_steady']}x; "
                f"median of {c['runs']})",
            ),
        ]
        if c["visage_stages_ms_per_frame"]:
            ms = c["visage_stages_ms_per_frame"]
            rows.append((f"{n}: visage ms/frame", ", ".join(f"{k} {v}" for k, v in ms.items())))
        for tool in ("visage", "deface") if args.judge else ():
            j = c[tool]
            rows.append(
                (
                    f"{n}: {tool}",
                    f"found {j['found']} in {len(j['frames_found'])} frames; re-identifiable "
                    f"{j['reidentifiable']} of {j['reference_faces']} in "
                    f"{len(j['frames_reidentifiable'])} frames; nearest {j['nearest_distance']}",
                )
            )
    rows.append(("load average", _loadavg()))
    emit({"clips": clips, "loadavg": _loadavg()}, args.json, rows)


if __name__ == "__main__":
    main()
