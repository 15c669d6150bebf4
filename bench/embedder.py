"""Embedder speed: the ResNet on ONNX Runtime against the same network run by dlib.

Aligned chips of real faces from ../shared/faces are embedded one at a time (batch 1) and
16 at a time; each figure is the median of repeated runs in this process, in ms per face.

    python bench/embedder.py [--json] [--threads N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import data_dir, emit, timed

from visage.media.image import read_image_file
from visage.vision.align import FaceAligner
from visage.vision.detect import CenterFaceDetector
from visage.vision.embed import DlibEmbedder, OnnxEmbedder


def chips(root: Path, n: int = 16) -> list[np.ndarray]:
    detector, aligner = CenterFaceDetector(), FaceAligner()
    out = []
    for path in sorted((root / "lfw10").glob("*/*.jpg")):
        pixels = read_image_file(path, max_pixels=10**8, max_bytes=10**9).pixels
        out += [aligner.chip(pixels, d.box) for d in detector.detect(pixels)[:1]]
        if len(out) == n:
            break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: all)")
    args = parser.parse_args()
    batch = chips(data_dir())
    dlib_net, onnx_net = DlibEmbedder(), OnnxEmbedder(threads=args.threads)
    result = {}
    for name, net in (("dlib", dlib_net), ("onnx", onnx_net)):
        b1 = timed(lambda net=net: net.embed(batch[:1]), repeat=10) * 1000
        b16 = timed(lambda net=net: net.embed(batch), repeat=3) * 1000 / len(batch)
        result[name] = {"batch1_ms_per_face": round(b1, 2), "batch16_ms_per_face": round(b16, 2)}
    result["speedup_batch1"] = round(
        result["dlib"]["batch1_ms_per_face"] / result["onnx"]["batch1_ms_per_face"], 1
    )
    result["speedup_batch16"] = round(
        result["dlib"]["batch16_ms_per_face"] / result["onnx"]["batch16_ms_per_face"], 1
    )
    rows = [("", "batch 1   batch 16   (ms per face)")]
    for name in ("dlib", "onnx"):
        r = result[name]
        rows.append((name, f"{r['batch1_ms_per_face']:7.2f}  {r['batch16_ms_per_face']:8.2f}"))
    rows.append(
        ("speed-up", f"{result['speedup_batch1']:6.1f}x  {result['speedup_batch16']:7.1f}x")
    )
    emit(result, args.json, rows)


if __name__ == "__main__":
    main()
